"""Scenarios do not poison each other (conformance/engine/settle.py): a server that serves one connection
at a time and keeps producing after its client leaves (targets/controls.py, ``serial-held``) is
judged on its own answers, never on the suite's own load.

The control holds its countdown to the end (1.2 s at time scale 0.2) and writes on for six
intervals (1.2 s) after a client that left. With ``--timeout 3`` three of delivery.concurrent's
five streams time out, and the server works on through each of them for 2.4 s: the scenario
recorded next would wait about 7 s behind them, more than twice its timeout.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.engine import settle
from conformance.checks.catalogue import CHECKS, Finding, load_all
from conformance.wire.recording import Recording
from conformance.scenarios.base import Context
from conformance.analysis.target import Target
from conformance.targets import launcher

ROOT = Path(__file__).resolve().parent.parent
SCALE = 0.2


@pytest.fixture
def serial_held():
    server = launcher.start("control-serial-held", ["{python}", "-m", "conformance.targets.controls", "serial-held", "{address}"],
                            SCALE)
    try:
        yield server
    finally:
        server.stop()


def test_the_run_judges_the_held_stream_and_nothing_is_error(serial_held, tmp_path):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "conformance", serial_held.base_url + "/5", "--timeout", "3",
                        "--skip-check", "browser.", "--report-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    took = time.monotonic() - t0
    doc = json.loads((tmp_path / "results.json").read_text())
    got = {r["check"]: r for r in doc["results"]}
    verdicts = {c: r["verdict"] for c, r in got.items()}
    assert p.returncode == 1, (p.stdout[-3000:], verdicts)
    assert verdicts["delivery.first-byte"] == "fail" and verdicts["delivery.progressive"] == "fail"
    assert "held to the end" in got["delivery.progressive"]["observed"]
    assert "error" not in verdicts.values(), {c: r["observed"] for c, r in got.items() if r["verdict"] == "error"}
    # One connection at a time: the concurrent streams wait for each other (the server's fault) ...
    assert verdicts["delivery.concurrent"] == "fail"
    # ... but what was recorded after them was answered, not starved by them: HTTP/1.0, HEAD and
    # httpx got the held body (or the head) and are judged on it.
    for check in ("framing.http10-no-te", "framing.head-supported", "framing.head-no-body", "framing.complete"):
        assert verdicts[check] == "pass", got[check]["observed"]
    assert "held to the end" in got["delivery.http10"]["observed"]
    assert "held to the end" in got["client.httpx"]["observed"]
    assert took < 120, f"the run took {took:.0f} s"


def abandon(url_host: str, port: int, n: int) -> list[socket.socket]:
    """Open ``n`` GETs and close them unanswered (the server still has them queued)."""
    socks = []
    for _ in range(n):
        s = socket.create_connection((url_host, port))
        s.sendall(b"GET /5 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for s in socks:
        s.close()
    return socks


def context(url: str) -> Context:
    return Context(Target("t", url, profile=None, interval=None), url, timeout=3.0, deadline=30.0)


def test_wait_for_quiet_waits_until_the_queue_of_abandoned_streams_is_served(serial_held):
    abandon(serial_held.host, serial_held.port, 2)
    result = settle.wait_for_quiet(context(serial_held.base_url + "/5"), "two abandoned streams", at_most=30)
    # each abandoned stream holds the server 1.2 s, then 1.2 s of writing into the void
    assert result.quiet and result.waited_s >= 3.5 and result.probes >= 2, result.note()
    assert "quiet" in result.note() and "\n" not in result.note()


def test_wait_for_quiet_is_bounded_and_says_still_busy(serial_held):
    abandon(serial_held.host, serial_held.port, 3)
    t0 = time.monotonic()
    result = settle.wait_for_quiet(context(serial_held.base_url + "/5"), "three abandoned streams", at_most=1.5)
    assert time.monotonic() - t0 < 1.5 + 1.0
    assert not result.quiet and "still busy" in result.note()


def test_a_quiet_server_is_probed_once(serial_held):
    result = settle.wait_for_quiet(context(serial_held.base_url + "/5"), "nothing", at_most=30)
    assert result.quiet and result.probes == 1 and result.waited_s < 1.0


def test_what_a_scenario_left_behind():
    done = Recording("get", "http://x/", end="complete")
    cut = Recording("get", "http://x/", end="timeout")
    refused = Recording("get", "http://x/", error="connection refused by x:80")
    assert settle.left_behind("get", done) is None and settle.left_behind("get", refused) is None
    assert settle.left_behind("head", cut) == "the 'head' scenario's stream, closed by the suite (timeout)"
    from conformance.scenarios.conditions import Concurrent, Stream
    streams = [Stream(f"stream {i}", "http://x/", "stream", 0.0, rec=r) for i, r in enumerate([done, cut, cut])]
    assert settle.left_behind("concurrent", Concurrent("concurrent", streams)) == \
        "the 'concurrent' scenario's 3 streams at once, 2 closed before the server ended them"


def test_a_finding_on_the_suites_own_load_is_said_as_such():
    load_all()
    busy = settle.Settle("the 'concurrent' scenario's 5 streams at once", waited_s=30.0, probes=1, quiet=False,
                         last="no response head within 30 s")
    starved = Recording("get-http10", "http://x/", error="no response head within 3 s")
    check = CHECKS["framing.http10-no-te"]
    f = settle.busy_finding(Finding("fail", "no response head within 3 s (while GET was answered 200 OK)"),
                            check, starved, busy)
    assert f.verdict == "warn" and "the server was still busy with the suite's earlier streams" in f.observed
    assert "--check framing.http10-no-te" in f.expected and "\n" not in f.observed
    # a quiet server, or a finding about the answer itself (not its timing), is left as judged
    quiet = settle.Settle("x", quiet=True)
    assert settle.busy_finding(Finding("fail", "x"), check, starved, quiet).verdict == "fail"
    answered = Recording("get-http10", "http://x/", status=200)
    assert settle.busy_finding(Finding("fail", "Transfer-Encoding sent"), check, answered, busy).verdict == "fail"
