"""Verdict holes of one family (issue 28): a judge meeting a shape it did not expect.

- A client or browser whose caller gets the units later than the raw recorder's GET of the same
  URL (matched by content) by more than the margin is late, not "on time", even when on their
  own the units came evenly (every SSE event one interval late under gzip: ``sse-gzip-tail``).
- A scenario whose record is a skip known before anything is recorded (``delivery.chain`` with
  no ``--reference``, ``delivery.h2`` on http://, a remote target's disconnect and large body)
  is neither recorded nor queued behind the others (its check still reads the main GET beside it,
  so a target that could not be reached is said alike by every check).
- text/html whose writes carry no markup (plain lines after a shell) is judged by its releases on
  the wire, as bytes are: streamed passes, held to the end fails.
"""
from __future__ import annotations

import time

import pytest

from conformance.checks.catalogue import CHECKS, load_all
from conformance.scenarios.clients import ClientRun
from conformance.wire.recording import Recording
from conformance.engine.run import Options, Run
from conformance.analysis.target import Target
from tests.scripted import HOLD, ScriptedServer
from tests.test_streams import run_url, verdicts

load_all()


# --- a caller behind the raw recorder ---------------------------------------------------------------

def sse_rec(scenario: str, times: list[float], data=lambda k: f"event {k}", connect: float = 0.001) -> Recording:
    """An SSE recording, one event per piece at the given times (s after the request)."""
    rec = Recording(scenario, "http://127.0.0.1:1/", connect_s=connect, head_t=0.0, http_version="1.1", status=200,
                    reason="OK", headers=[["Content-Type", "text/event-stream"]], framing="chunked", end="complete")
    body = b""
    for k, t in enumerate(times):
        block = f"data: {data(k)}\n\n".encode()
        rec.pieces.add(t, len(body), len(block), True, True)
        rec.reads.add(t, len(block) + 8)
        body += block
    rec.body_bytes, rec.body_kept = len(body), body.decode("latin-1")
    rec.end_t = times[-1] if times else 0.0
    return rec


def client(caller: Recording, raw: Recording | None) -> ClientRun:
    return ClientRun("httpx", "httpx 0.28.1", "httpx_sse.iter_sse()", caller, wire=None, reference=raw)


def judge(run: ClientRun, interval: float | None, strict: bool = True):
    run.target = Target("t", "http://127.0.0.1:1/", "sse", interval)
    return CHECKS["client.httpx"].judge(run, run.target, strict)


EVENTS = [0.5 * k for k in range(12)]


@pytest.mark.parametrize("interval", [None, 0.5])
def test_a_caller_one_interval_behind_the_raw_recorder_is_late(interval):
    late = judge(client(sse_rec("httpx", [t + 0.5 for t in EVENTS]), sse_rec("get", EVENTS)), interval)
    assert late.verdict == "fail", late.observed
    assert "the caller got 12 events late" in late.observed and "median 500 ms" in late.observed
    assert late.metrics["lag_vs_raw_limit_s"] == 0.25
    # SHOULD: warn unless --strict
    assert judge(client(sse_rec("httpx", [t + 0.5 for t in EVENTS]), sse_rec("get", EVENTS)), interval,
                 strict=False).verdict == "warn"


@pytest.mark.parametrize("interval", [None, 0.5])
def test_a_caller_beside_the_raw_recorder_is_on_time(interval):
    ok = judge(client(sse_rec("httpx", [t + 0.08 for t in EVENTS]), sse_rec("get", EVENTS)), interval)
    assert ok.verdict == "pass", ok.observed
    assert "reached the caller on time" in ok.observed and "behind the raw recorder: median 80 ms" in ok.observed


def test_units_of_other_content_are_not_compared():
    """A live feed read twice: the raw GET's events and the caller's are other events, so their
    times say nothing of each other (nothing matched: no lag verdict)."""
    raw = sse_rec("get", EVENTS, data=lambda k: f"tick at {1000 + k}")
    caller = sse_rec("httpx", [t + 0.5 for t in EVENTS], data=lambda k: f"tick at {2000 + k}")
    f = judge(client(caller, raw), None)
    assert f.verdict == "pass", f.observed
    assert "lag_vs_raw_limit_s" not in f.metrics


def test_without_a_raw_recording_nothing_is_compared():
    f = judge(client(sse_rec("httpx", [t + 0.5 for t in EVENTS]), None), None)
    assert f.verdict == "pass", f.observed


def test_event_readers_behind_the_wire_under_gzip_are_late_from_the_cli(tmp_path):
    """sse-gzip-tail: each gzip flush's tail held until the next event, so under the gzip every
    client asks for, each event completes one interval (0.5 s) late, evenly. httpx-sse passed
    "on time" before; now it is late (fail under --strict: exit 1). The same events with no coding
    (sse-tokens, read by the same clients) pass: exit 0."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:   # the two runs side by side
        tail, tokens = pool.map(lambda m: run_url(m, tmp_path / m, "--strict", "--check", "client.httpx",
                                                  "--check", "delivery.progressive"), ["sse-gzip-tail", "sse-tokens"])
    code, doc, _, out = tail
    httpx = next(r for r in doc["results"] if r["check"] == "client.httpx")
    assert code == 1 and httpx["verdict"] == "fail", out
    assert "late" in httpx["observed"] and "after the raw recorder's GET" in httpx["observed"], httpx["observed"]
    assert "the hold is under gzip" in httpx["observed"]
    code, doc, _, out = tokens
    assert code == 0 and verdicts(doc)["client.httpx"] == "pass", out


# --- no scenario recorded or waited for when its checks will skip ------------------------------------

def test_a_scenario_known_to_skip_is_not_queued_behind_a_stream(tmp_path):
    """The main GET of a server that never ends its response is still being recorded; the chain
    (no --reference), h2 (http://), disconnect and large-body (a remote target) records are there
    at once, and their checks skip."""
    with ScriptedServer([b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
                         HOLD]) as server:
        # the GET is watched 5 s: five times the second the other records are given to be there
        run = Run([Target("held", server.url("/"), "sse", None, watch=5.0)],
                  Options(timeout=5.0, report_dir=tmp_path))
        trun = run.targets[0]
        trun.scenarios = ["get", "chain", "h2", "disconnect", "large"]
        try:
            run.ensure_started()
            t0 = time.monotonic()
            for name in ("chain", "h2", "disconnect", "large"):
                assert trun.recording(name) is not None
            assert time.monotonic() - t0 < 1.0 and not trun._futures["get"].done()   # the GET is still running
            assert trun.known_skips == {"chain", "h2", "disconnect", "large"}
            # judged beside the GET as every check is (a GET without an answer says so alike)
            for check_id in ("delivery.chain", "delivery.h2", "delivery.disconnect", "delivery.large-body"):
                f = trun.run_check(CHECKS[check_id])
                assert f.verdict == "skip", (check_id, f.observed)
        finally:
            run.stop()


def test_a_chain_with_a_reference_is_recorded(tmp_path):
    """The control: with --reference the chain is recorded (its four legs) and judged."""
    from conformance.scenarios.chain import with_reference
    from conformance.targets import launcher
    server = launcher.start("control-sse-tokens", ["{python}", "-m", "conformance.targets.streams", "sse-tokens", "{address}"], 1.0)
    try:
        target = Target("tokens", server.base_url + "/", "sse", None)
        target = with_reference(target, server.base_url + "/")
        run = Run([target], Options(report_dir=tmp_path))
        trun = run.targets[0]
        trun.scenarios = ["chain"]
        try:
            run.ensure_started()
            f = trun.run_check(CHECKS["delivery.chain"])
            chain = trun.recording("chain")
            assert chain.skip is None and len(chain.legs) == 4
            assert f.verdict == "pass", f.observed
        finally:
            run.stop()
    finally:
        server.stop()


# --- HTML whose writes carry no markup ----------------------------------------------------------------

def test_plain_countdown_lines_are_not_elements():
    from conformance.analysis.inferred import unmarked
    shell = b"<!doctype html><html><head><title>t</title></head><body><h1>Countdown</h1>\n"
    assert "10 'Liftoff in' lines outside" in unmarked(shell + b"".join(b"Liftoff in %d...<br>\n" % i
                                                                          for i in range(10, 0, -1)))
    assert "0 countdown element(s)" in unmarked(b"Prepare for Launch!\n")
    seed = b"<h2>Prepare for Launch!</h2><ul>" + b"".join(b"<li>Liftoff in %d...</li>" % i for i in range(3, 0, -1))
    assert unmarked(seed + b"</ul><h1>Lift off</h1>") is None


def test_html_lines_are_judged_by_their_releases_from_the_cli(tmp_path):
    """A text/html page of plain lines after a shell, given only its URL: held to the end, it
    fails (exit 1); streamed, it passes (exit 0). Counted as one item, both were "undecided"."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        held, streamed = pool.map(lambda m: run_url(m, tmp_path / m, "--check", "delivery.first-byte",
                                                    "--check", "delivery.progressive"),
                                  ["html-lines-held", "html-lines"])
    code, doc, _, out = held
    assert code == 1, out
    assert doc["targets"][0]["profile"] == "countdown"
    for r in doc["results"]:
        assert r["verdict"] == "fail" and "held to the end" in r["observed"], r
        assert "the page's writes carry no markup" in r["observed"]
    code, doc, _, out = streamed
    assert code == 0, out
    assert verdicts(doc) == {"delivery.first-byte": "pass", "delivery.progressive": "pass"}, out
