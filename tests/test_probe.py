"""The probe (``conformance.probe``): what it writes, how the judge side reads it back, and the
probe live under a WSGI server, an ASGI server, standalone, and mounted in Flask and FastAPI.

Live streams run at 400 ms writes (docs/guide.md, "Stability": a few targets at once); what is asserted
is what the probe controls (its schedule and timestamps, recognised from the body) and that each
write arrived on its own, within the burst margin of its schedule.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import probe
from conformance.probe import (PROFILES, ProbeRequest, arrival_times, clock_offset, parse_request, recognise, write,
                               write_delays)
from conformance.wire.recorder import record
from conformance.wire.recording import Piece, Recording
from conformance.targets import launcher

ROOT = Path(__file__).resolve().parent.parent
INTERVAL, COUNT = 0.4, 3


def body_of(profile: str, count: int, interval: float = 1.0, t0: float = 1_700_000_000.0) -> tuple[bytes, list[int]]:
    req = ProbeRequest(profile, count, interval)
    writes = [write(req, k, t0 + k * interval) for k in range(req.writes)]
    ends, total = [], 0
    for w in writes:
        total += len(w)
        ends.append(total - 1)
    return b"".join(writes), ends


@pytest.mark.parametrize("profile", PROFILES)
def test_recognise_every_profile(profile):
    body, ends = body_of(profile, 5, 0.25)
    s = recognise(body)
    assert (s.profile, s.count, s.interval) == (profile, 5, 0.25)
    assert s.expected == (7 if profile == "countdown" else 5) and s.complete
    assert s.ends == ends   # each write ends where its bytes end
    assert s.timestamps == [1_700_000_000.0 + k * 0.25 for k in range(s.expected)]
    assert s.span == (s.expected - 1) * 0.25


def test_countdown_is_the_countdown_protocol():
    """The suite's countdown reader finds every group in the probe's countdown."""
    from conformance.analysis.units import countdown_group_offsets
    body, ends = body_of("countdown", 4)
    offsets = countdown_group_offsets(body, 4)
    assert None not in offsets
    # every group is found inside its own write
    starts = [0] + [e + 1 for e in ends[:-1]]
    assert all(s <= off <= e for off, s, e in zip(offsets, starts, ends))


def test_bytes_writes_have_one_size():
    sizes = {len(write(ProbeRequest("bytes", 9_999_999 // 10), k, 1e9 + k)) for k in (0, 5, 99)}
    assert len(sizes) == 1


def test_recognise_a_partial_body():
    body, ends = body_of("sse", 6)
    s = recognise(body[:ends[2] + 1] + b"id: 3\nevent: probe\ndata: {\"probe\"")
    assert [w.seq for w in s.writes] == [0, 1, 2] and not s.complete


@pytest.mark.parametrize("body", [b"", b"hello\n", b"<h1>Lift off</h1>", b'{"probe": "other", "seq": 0}\n',
                                  b'{"probe": "conformance", "profile": "ndjson", "seq": "0", "count": 1, "interval": 1, "t": 1}\n',
                                  b"data: [1,2]\n\n" * 3, b"\xff\xfe" * 1000])
def test_not_a_probe(body):
    assert recognise(body) is None


def test_writes_that_disagree_are_left_out():
    req = ProbeRequest("ndjson", 4, 1.0)
    other = ProbeRequest("ndjson", 9, 1.0)
    body = write(req, 0, 1.0) + write(other, 1, 2.0) + write(req, 2, 3.0) + write(req, 1, 4.0) + write(req, 7, 5.0)
    s = recognise(body)
    assert [w.seq for w in s.writes] == [0, 2]   # another schedule, out of order, out of range: not counted


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(PROFILES), st.integers(0, 400))
def test_recognise_never_raises(noise, profile, cut):
    body, _ = body_of(profile, 3)
    for b in (noise, body[:cut] + noise, noise + body):
        s = recognise(b)
        assert s is None or all(0 <= w.end < len(b) for w in s.writes)


def test_parse_request():
    assert parse_request("/probe/sse/5", "interval=0.2") == ProbeRequest("sse", 5, 0.2)
    assert parse_request("/countdown/3/", "") == ProbeRequest("countdown", 3, 1.0)
    assert parse_request("/bytes/2", "x-accel-buffering=no").headers()[-1] == ("X-Accel-Buffering", "no")
    assert ProbeRequest("sse", 2).headers() == [("Content-Type", "text/event-stream; charset=utf-8")]
    for path, query, status in [("/sse/0", "", 400), ("/sse/5", "interval=-1", 400), ("/sse/5", "interval=nan", 400),
                                ("/sse/5", "interval=x", 400), ("/sse/5", "x-accel-buffering=maybe", 400),
                                ("/other/5", "", 404), ("/sse/", "", 404), ("/sse/5", "a=1&" * 30, 400)]:
        got = parse_request(path, query)
        assert isinstance(got, tuple) and got[0] == status, (path, query, got)


def recording(pieces: list[tuple[float, bytes]]) -> Recording:
    rec = Recording("get", "http://t/")
    offset = 0
    for t, data in pieces:
        rec.pieces.append(Piece(t, offset, len(data), True, True))
        offset += len(data)
    rec.body_bytes, rec.body_kept = offset, b"".join(d for _, d in pieces).decode("latin-1")
    return rec


def test_clock_offset_and_delays():
    req = ProbeRequest("ndjson", 4, 1.0)
    t0 = 1_700_000_000.0
    writes = [write(req, k, t0 + k) for k in range(4)]
    # streamed: each write arrives 0.2 s (the clock offset) after it was made
    streamed = recognise(b"".join(writes))
    arrivals = arrival_times(streamed, recording([(0.2 + k, w) for k, w in enumerate(writes)]))
    assert arrivals == pytest.approx([0.2, 1.2, 2.2, 3.2])
    assert clock_offset(streamed, arrivals) == pytest.approx(0.2 - t0)
    assert write_delays(streamed, arrivals) == pytest.approx([0, 0, 0, 0], abs=1e-6)
    # held to the end: the first write's offset would be wrong; the least-held write's is right
    held = arrival_times(streamed, recording([(3.2, b"".join(writes))]))
    assert held == [3.2] * 4
    assert clock_offset(streamed, held, "first") == pytest.approx(3.2 - t0)
    assert write_delays(streamed, held) == pytest.approx([3, 2, 1, 0], abs=1e-6)
    # a write whose bytes were not kept has no arrival
    assert arrival_times(streamed, recording([(0.2, writes[0])]))[1:] == [None, None, None]


def call_wsgi(app, path, query="", method="GET"):
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, headers
    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": ""},
                        start_response))
    return seen["status"], dict(seen["headers"]), body


def test_wsgi_app_directly():
    status, headers, body = call_wsgi(probe.wsgi_app, "/ndjson/3", "interval=0")
    assert status == "200 OK" and headers == {"Content-Type": "application/x-ndjson"}
    assert recognise(body).complete
    assert call_wsgi(probe.wsgi_app, "/ndjson/3", "", "HEAD")[2] == b""
    assert call_wsgi(probe.wsgi_app, "/nothing")[0].startswith("404")
    assert call_wsgi(probe.wsgi_app, "/sse/3", "", "POST")[0].startswith("405")
    assert call_wsgi(probe.wsgi_app, "/")[0] == "200 OK"
    app = probe.mount_wsgi(lambda env, sr: (sr("204 No Content", []), [b"app"])[1], "/probe")
    assert call_wsgi(app, "/probe/bytes/2", "interval=0")[0] == "200 OK"
    assert call_wsgi(app, "/elsewhere")[0] == "204 No Content"


def call_asgi(app, path, query=b"", disconnect_after=None):
    sent = []

    async def go():
        received = 0

        async def receive():
            nonlocal received
            received += 1
            if disconnect_after is not None:
                await asyncio.sleep(disconnect_after)
                return {"type": "http.disconnect"}
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)
        await app({"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}, receive, send)
    asyncio.run(go())
    return sent


def test_asgi_app_directly():
    sent = call_asgi(probe.asgi_app, "/sse/3", b"interval=0")
    assert sent[0]["status"] == 200 and (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert recognise(b"".join(m.get("body", b"") for m in sent[1:])).complete
    assert sent[-1] == {"type": "http.response.body", "body": b""}
    # the client goes away after 0.15 s: the probe stops writing (one write at 0, none after)
    gone = call_asgi(probe.asgi_app, "/ndjson/50", b"interval=0.1", disconnect_after=0.15)
    assert 2 <= len(gone) <= 4
    assert call_asgi(probe.mount_asgi(probe.asgi_app, "/p"), "/p/bytes/1", b"interval=0")[0]["status"] == 200


# --- live ---------------------------------------------------------------------------------------

SERVERS = {
    "waitress (WSGI)": ("{python}", "-m", "waitress", "--listen={address}", "conformance.probe:wsgi_app"),
    "uvicorn (ASGI)": ("{python}", "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
                       "--timeout-graceful-shutdown", "1", "conformance.probe:asgi_app"),
    "standalone": ("{python}", "-m", "conformance.probe", "--port", "{port}"),
}


def assert_streams(base: str, prefix: str = "") -> None:
    """Every profile, recorded at once: recognised with its schedule, each write on its own."""
    def one(profile):
        url = f"{base}{prefix}/{profile}/{COUNT}?interval={INTERVAL}"
        return profile, record(url, timeout=10, deadline=30)
    with ThreadPoolExecutor(len(PROFILES)) as pool:
        recs = list(pool.map(one, PROFILES))
    for profile, rec in recs:
        assert rec.error is None and rec.status == 200, (profile, rec.error, rec.status)
        s = recognise(rec.body)
        assert s is not None and (s.profile, s.count, s.interval) == (profile, COUNT, INTERVAL), (profile, s)
        assert s.complete, (profile, [w.seq for w in s.writes])
        # the server's own timestamps follow the schedule (it is absolute: no drift)
        for k, t in enumerate(s.timestamps):
            assert t - s.timestamps[0] == pytest.approx(k * INTERVAL, abs=0.15), (profile, s.timestamps)
        # each write arrived when it was made (within half an interval of the least-held one)
        delays = write_delays(s, arrival_times(s, rec))
        assert max(delays) < INTERVAL / 2, (profile, delays)


@pytest.mark.parametrize("server", list(SERVERS))
def test_probe_live(server):
    running = launcher.start(f"probe-{server.split()[0]}", list(SERVERS[server]))
    try:
        assert_streams(running.base_url)
    finally:
        running.stop()


def test_probe_mounted_in_flask_under_gunicorn_gthread():
    pytest.importorskip("flask")
    running = launcher.start("probe-flask", ["{python}", "-m", "gunicorn", "--bind", "{address}", "--worker-class",
                                             "gthread", "--threads", "8", "--graceful-timeout", "1",
                                             "--pythonpath", str(ROOT / "examples"), "probe_flask:app"])
    try:
        assert_streams(running.base_url, "/probe")
        assert record(running.base_url + "/", timeout=5, deadline=10).body.startswith(b"the app")
    finally:
        running.stop()


def test_probe_mounted_in_fastapi_under_uvicorn():
    pytest.importorskip("fastapi")
    running = launcher.start("probe-fastapi", ["{python}", "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
                                               "--app-dir", str(ROOT / "examples"), "--timeout-graceful-shutdown", "1",
                                               "probe_fastapi:app"])
    try:
        assert_streams(running.base_url, "/probe")
        assert json.loads(record(running.base_url + "/", timeout=5, deadline=10).body) == {"probe": "/probe/sse/10"}
    finally:
        running.stop()

