"""``delivery.chain`` (``--reference``): the comparison on synthetic pairs of recordings, every
profile, gzip and not, the probe and plain content; then live, Debian's nginx in front of the
probe: its defaults fail, ``proxy_buffering off`` and the probe's ``?x-accel-buffering=no``
pass, and gzip is decoded. Live streams run at 500 ms writes: the limit is then 250 ms of
holding, far above loopback jitter and far below one held interval.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zlib

import pytest

from conformance.checks.catalogue import CHECKS, load_all
from conformance.scenarios.chain import Chain, Leg, compare, reference_of, with_reference
from conformance.probe import ProbeRequest, write
from conformance.wire.recorder import BadURL
from conformance.wire.recording import Piece, Recording
from conformance.scenarios.base import SCENARIOS, Context
from conformance.analysis.target import Target
from conformance.targets import launcher
from conformance.targets.nginx import find_nginx

load_all()
CHAIN = CHECKS["delivery.chain"]
T0 = 1000.0   # the common clock's time of both recordings' t = 0


def rec_of(writes: list[bytes], times: list[float], *, gzip: bool = False, status: int = 200,
           end: str = "complete") -> Recording:
    """A recording whose body arrived as ``writes`` at ``times`` (several writes may share a time)."""
    rec = Recording("chain", "http://t/x", connect_s=0.0005, head_t=0.0, status=status, http_version="1.1",
                    framing="chunked", end=end, headers=[["Content-Type", "text/plain"]])
    comp = zlib.compressobj(9, zlib.DEFLATED, 31) if gzip else None
    if gzip:
        rec.headers.append(["Content-Encoding", "gzip"])
    body, offset = b"", 0
    for i, (data, t) in enumerate(zip(writes, times)):
        if comp is not None:
            data = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH if i < len(writes) - 1 else zlib.Z_FINISH)
        if rec.pieces and rec.pieces[-1].t == t:   # one read
            rec.pieces.grow_last(len(data), True)
        else:
            rec.pieces.append(Piece(t, offset, len(data), True, True))
        offset += len(data)
        body += data
    rec.body_bytes, rec.body_kept, rec.end_t = offset, body.decode("latin-1"), times[-1] if times else 0.0
    return rec


def chain_of(origin: Recording, target: Recording, gzip_target: Recording | None = None) -> Chain:
    return Chain("chain", [Leg("origin", "identity", origin, T0), Leg("target", "identity", target, T0),
                           Leg("origin", "compressed", origin, T0), Leg("target", "compressed", gzip_target or target, T0)],
                 reference="http://origin/x")


def probe_writes(profile: str, n: int, interval: float, lag: float = 0.0) -> list[bytes]:
    req = ProbeRequest(profile, n, interval)
    return [write(req, k, 1.7e9 + lag + k * interval) for k in range(req.writes)]


def plain_writes(profile: str, n: int) -> list[bytes]:
    if profile == "countdown":
        return ([b"<h2>Prepare for Launch!</h2><ul>"] + [b"<li>Liftoff in %d...</li>" % i for i in range(n, 1, -1)]
                + [b"<li>Liftoff in 1...</li></ul>", b"<h1>Lift off</h1>"])
    if profile == "sse":
        return [b"data: event %d\n\n" % k for k in range(n)]
    if profile == "ndjson":
        return [b'{"k": %d}\n' % k for k in range(n)]
    return [bytes([65 + k]) * 300 for k in range(n)]


STREAMED = lambda k, n, i: 0.001 + k * i + 0.002   # noqa: E731 - arrival through a chain that streams
HELD = lambda k, n, i: 0.001 + (n - 1) * i + 0.003   # noqa: E731 - all released with the last


def judge(writes_o, writes_t, when, interval=0.5, profile="countdown", count=None, gzip=False):
    n = len(writes_o)
    origin = rec_of(writes_o, [0.001 + k * interval for k in range(n)])
    times = [when(k, n, interval) for k in range(n)]
    target = rec_of(writes_t, times)
    gz = rec_of(writes_t, times, gzip=True) if gzip else None
    t = Target("t", f"http://t/{profile}/{count or n}", profile, interval, count)
    return CHAIN.judge(chain_of(origin, target, gz), t)


@pytest.mark.parametrize("profile", ["countdown", "sse", "ndjson", "bytes"])
@pytest.mark.parametrize("source", ["probe", "plain"])
def test_streamed_passes_held_fails(profile, source):
    n = 5
    if source == "probe":
        wo, wt = probe_writes(profile, n, 0.5), probe_writes(profile, n, 0.5, lag=0.001)
    else:
        wo = wt = plain_writes(profile, n)
    count = n if profile == "countdown" and source == "plain" else None
    ok = judge(wo, wt, STREAMED, profile=profile, count=count, gzip=True)
    assert ok.verdict == "pass", ok.observed
    bad = judge(wo, wt, HELD, profile=profile, count=count, gzip=True)
    assert bad.verdict == "fail", bad.observed
    events = len(wo)
    assert bad.metrics["max_held_events"] == pytest.approx(events - 1, abs=0.05)
    assert bad.metrics["merged_bursts"] == events and bad.metrics["target_bursts"] == 1
    assert bad.metrics["compressed_max_held_events"] == pytest.approx(events - 1, abs=0.05)
    assert "Content-Encoding: origin identity, target gzip; decoded" in bad.observed


def test_held_only_when_compressed():
    wo = probe_writes("sse", 4, 0.5)
    origin = rec_of(wo, [0.001 + k * 0.5 for k in range(4)])
    plain = rec_of(wo, [0.002 + k * 0.5 for k in range(4)])
    held_gz = rec_of(wo, [1.503] * 4, gzip=True)
    f = CHAIN.judge(chain_of(origin, plain, held_gz), Target("t", "http://t/sse/4", "sse", 0.5))
    assert f.verdict == "fail"
    assert f.metrics["max_held_ms"] < 10 and f.metrics["compressed_max_held_ms"] == pytest.approx(1502, abs=2)


def test_one_held_event_fails():
    """Holding a single event by one interval (a buffer that waits for the next write) fails."""
    wo = probe_writes("ndjson", 5, 0.5)
    times = [0.002, 0.502, 1.502, 1.503, 2.002]   # event 2 held until event 3
    f = judge(wo, wo, lambda k, n, i: times[k], profile="ndjson")
    assert f.verdict == "fail" and f.metrics["held_ms"][2] == pytest.approx(500, abs=2)


def test_the_probes_later_copy_is_not_held():
    """The chain's copy made 80 ms later (its request reached the origin later) and arriving 80
    ms later is not held: the probe's timestamps take the lag off."""
    wo, wt = probe_writes("sse", 4, 0.2), probe_writes("sse", 4, 0.2, lag=0.08)
    f = judge(wo, wt, lambda k, n, i: 0.001 + k * i + 0.081, interval=0.2, profile="sse")
    assert f.verdict == "pass" and f.metrics["max_held_ms"] < 2, f.observed
    # plain content cannot tell: the 80 ms count as held (within the limit of 100 ms here)
    g = judge(plain_writes("sse", 4), plain_writes("sse", 4), lambda k, n, i: 0.001 + k * i + 0.081,
              interval=0.2, profile="sse")
    assert g.verdict == "pass" and g.metrics["max_held_ms"] == pytest.approx(81, abs=2)


def test_the_profile_comes_from_the_origins_response():
    """Without --profile, the origin's Content-Type says what the body is."""
    wo = plain_writes("sse", 4)
    origin = rec_of(wo, [0.001 + k * 0.5 for k in range(4)])
    origin.headers = [["Content-Type", "text/event-stream; charset=utf-8"]]
    f = CHAIN.judge(chain_of(origin, rec_of(wo, [1.503] * 4)), Target("t", "http://t/sse/4", None, 0.5))
    assert f.verdict == "fail" and "matched by event content" in f.observed, f.observed


def test_without_an_interval_the_origins_pace_stands_for_it():
    wo = plain_writes("ndjson", 5)
    origin = rec_of(wo, [0.001 + k * 0.4 for k in range(5)])
    t = Target("t", "http://t/feed", "ndjson", None)
    ok = CHAIN.judge(chain_of(origin, rec_of(wo, [0.003 + k * 0.4 for k in range(5)])), t)
    assert ok.verdict == "pass" and "median gap between events, 400 ms" in ok.observed and ok.metrics["limit_ms"] == 200
    held = CHAIN.judge(chain_of(origin, rec_of(wo, [1.603] * 5)), t)
    assert held.verdict == "fail" and held.metrics["max_held_events"] == pytest.approx(4, abs=0.05)


def test_dynamic_content_is_matched_by_position():
    wo = [b'{"k": %d, "t": %d}\n' % (k, 100 + k) for k in range(4)]
    wt = [b'{"k": %d, "t": %d}\n' % (k, 200 + k) for k in range(4)]
    f = judge(wo, wt, HELD, profile="ndjson")
    assert f.verdict == "fail" and "matched by position" in f.observed


def test_events_that_never_came():
    wo = probe_writes("sse", 4, 0.5)
    origin = rec_of(wo, [0.001 + k * 0.5 for k in range(4)])
    target = rec_of(wo[:1], [0.002], end="timeout")   # the rest still held when the recording gave up
    target.end_t = 10.0
    f = CHAIN.judge(chain_of(origin, target), Target("t", "http://t/sse/4", "sse", 0.5))
    assert f.verdict == "fail" and "3 events had not come through the chain" in f.observed
    # an endless feed watched for a while: the last event, sent just before the watch ended, may
    # still be on its way; the ones before it may not
    target = rec_of(wo[:3], [0.002, 0.502, 1.002], end="watched")
    target.end_t = 1.6
    assert CHAIN.judge(chain_of(origin, target), Target("t", "http://t/sse/4", "sse", 0.5)).verdict == "pass"
    target.end_t = 2.1
    f = CHAIN.judge(chain_of(origin, target), Target("t", "http://t/sse/4", "sse", 0.5))
    assert f.verdict == "fail" and "1 events had not come" in f.observed
    # a complete body that lacks an event: different content, said, not a hold
    target = rec_of(wo[:3], [0.002, 0.502, 1.002])
    f = CHAIN.judge(chain_of(origin, target), Target("t", "http://t/sse/4", "sse", 0.5))
    assert f.verdict == "pass" and "1 of the origin's events are not in the target's body" in f.observed


def test_no_reference_skips_with_the_hint():
    t = Target("t", "http://127.0.0.1:9/sse/3", "sse", 0.5)
    result = SCENARIOS["chain"].run(Context(t, t.url, 1.0, 2.0))
    f = CHAIN.judge(result, t)
    assert f.verdict == "skip" and "--reference ORIGIN_URL" in f.observed and "probe" in f.observed


def test_errors():
    wo = probe_writes("sse", 2, 0.5)
    good = rec_of(wo, [0.001, 0.501])
    t = Target("t", "http://t/sse/2", "sse", 0.5)
    refused = Recording("chain", "http://origin/x", error="connection refused by origin:80")
    f = CHAIN.judge(chain_of(refused, good), t)
    assert f.verdict == "error" and "the origin (--reference http://origin/x)" in f.observed
    f = CHAIN.judge(chain_of(good, rec_of(wo, [0.001, 0.501], status=502)), t)
    assert f.verdict == "error" and "HTTP 502" in f.observed
    # nothing recognisable in the origin's body
    empty = rec_of([b""], [0.001])
    f = CHAIN.judge(chain_of(empty, empty), Target("t", "http://t/sse/2", "sse", 0.5))
    assert f.verdict == "skip" and "no sse events" in f.observed
    # a coding the suite cannot decode
    br = rec_of(wo, [0.001, 0.501])
    br.headers.append(["Content-Encoding", "x-unknown"])
    why = compare(Leg("origin", "compressed", good, T0), Leg("target", "compressed", br, T0), "sse", 2, 0.5)
    assert "the target's Content-Encoding" in why and "cannot be decoded" in why


def test_reference_option_and_targets_file(tmp_path):
    from conformance.engine.targets_file import load
    t = Target("t", "http://t/sse/2")
    t = with_reference(t, "http://origin:8000/sse/2")
    assert reference_of(t) == "http://origin:8000/sse/2"
    with pytest.raises(BadURL):
        with_reference(t, "ftp://origin/")
    f = tmp_path / "t.toml"
    f.write_text('[[target]]\nid = "a"\nurl = "http://proxy/sse/3"\nreference = "http://origin/sse/3"\n')
    assert reference_of(load(f)[0]) == "http://origin/sse/3"
    f.write_text('[[target]]\nid = "a"\nurl = "http://proxy/sse/3"\nreference = "nope"\n')
    with pytest.raises(pytest.UsageError, match="reference"):
        load(f)


# --- live: nginx in front of the probe ----------------------------------------------------------

needs_nginx = pytest.mark.skipif(find_nginx() is None, reason="nginx not installed (apt-get install nginx)")
INTERVAL = 0.5


@pytest.fixture(scope="module")
def origin():
    running = launcher.start("probe", ["{python}", "-m", "conformance.probe", "--port", "{port}"])
    yield running
    running.stop()


def nginx(origin, variant: str):
    return launcher.start(f"probe-nginx-{variant}", ["{python}", "-m", "conformance.targets.probe_nginx", variant,
                                                     str(origin.port), "{address}"])


def chain_verdict(origin, variant: str, path: str):
    proxy = nginx(origin, variant)
    try:
        url = proxy.base_url + path
        t = Target(url, url, "bytes", INTERVAL)
        t = with_reference(t, origin.base_url + path)
        result = SCENARIOS["chain"].run(Context(t, url, 10.0, 30.0))
        return CHAIN.judge(result, t)
    finally:
        proxy.stop()


@needs_nginx
@pytest.mark.parametrize("variant,path,verdict", [
    ("default", "/sse/4", "fail"),               # proxy_buffering on, HTTP/1.0 upstream: held to the end
    ("unbuffered", "/sse/4", "pass"),            # proxy_buffering off
    ("default", "/ndjson/4?x-accel-buffering=no", "pass"),   # the probe asks nginx not to buffer
    ("default", "/bytes/4", "fail"),
    ("unbuffered-gzip", "/countdown/3", "pass"),   # gzip on text/html, flushed write by write: decoded
    ("gzip", "/countdown/3", "fail"),
])
def test_nginx_in_front_of_the_probe(origin, variant, path, verdict):
    sep = "&" if "?" in path else "?"
    f = chain_verdict(origin, variant, f"{path}{sep}interval={INTERVAL}")
    assert f.verdict == verdict, f.observed
    if verdict == "fail":   # held to the end: the first write by the whole schedule
        writes = int(path.split("/")[2].split("?")[0]) + (2 if path.startswith("/countdown") else 0)
        assert f.metrics["max_held_ms"] == pytest.approx((writes - 1) * INTERVAL * 1000, abs=150)
    else:
        assert f.metrics["max_held_ms"] < 100 and f.metrics["merged_bursts"] == 1
    if "gzip" in variant:
        assert "target gzip; decoded" in f.observed and f.metrics["compressed_max_held_ms"] is not None


@needs_nginx
def test_reference_from_the_command_line(origin, tmp_path):
    """``python -m conformance URL --reference ORIGIN``: nginx's defaults fail (exit 1); a targets
    file with ``reference`` and the probe's ``?x-accel-buffering=no`` passes (exit 0)."""
    proxy = nginx(origin, "default")
    try:
        path = f"/sse/3?interval={INTERVAL}"
        out = subprocess.run([sys.executable, "-m", "conformance", proxy.base_url + path, "--reference",
                              origin.base_url + path, "--check", "delivery.chain", "--report-dir", str(tmp_path / "a")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, out.stdout[-3000:]
        result = json.loads((tmp_path / "a" / "results.json").read_text())["results"][0]
        assert (result["check"], result["verdict"]) == ("delivery.chain", "fail")
        path += "&x-accel-buffering=no"
        (tmp_path / "t.toml").write_text(f'[[target]]\nid = "nginx"\nurl = "{proxy.base_url + path}"\n'
                                         f'reference = "{origin.base_url + path}"\ninterval = {INTERVAL}\n')
        out = subprocess.run([sys.executable, "-m", "conformance", "--targets-file", str(tmp_path / "t.toml"),
                              "--check", "delivery.chain", "--report-dir", str(tmp_path / "b")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout[-3000:]
    finally:
        proxy.stop()
