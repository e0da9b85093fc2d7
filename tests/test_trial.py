"""Shared scenarios on trial (docs/scheduling.md): where every concurrent stream was served at
once, the shared scenarios are all recorded at once; one not answered as promptly as the main
GET may have waited for a worker the suite's own requests held, and is recorded again within the
connections the server was shown to serve. A pool just large enough for the concurrent streams
must get the verdicts an unlimited server gets."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.engine.run import SHARED_HEAD_S, answered_promptly
from conformance.targets import launcher
from conformance.wire.recording import Piece, Recording

ROOT = Path(__file__).resolve().parents[1]


def _rec(head, first=None, method="GET", error=None, coding=None):
    rec = Recording("x", "http://127.0.0.1:1/", method=method, error=error)
    rec.head_t = head
    rec.headers = [["Content-Type", "text/event-stream"]] + ([["Content-Encoding", coding]] if coding else [])
    rec.pieces = [] if first is None else [Piece(first, 0, 10, False, False)]
    return rec


GET = _rec(0.002, 0.05)


def test_prompt_head_and_first_byte_are_kept():
    assert answered_promptly(_rec(0.01, 0.3), GET)


def test_a_head_that_waited_for_a_worker_is_recorded_again():
    assert not answered_promptly(_rec(GET.head_t + SHARED_HEAD_S + 3.0, GET.head_t + SHARED_HEAD_S + 3.1), GET)


def test_a_prompt_head_with_a_late_first_byte_is_recorded_again():
    # an accept thread answers at once, the body waits for a batch slot (a model server's queue)
    assert not answered_promptly(_rec(0.01, GET.pieces[0].t + SHARED_HEAD_S + 2.0), GET)


def test_a_body_held_by_a_coding_is_not_a_wait_for_a_worker():
    # gzip holding the whole body (delivery.compressed's finding): the head came at once
    assert answered_promptly(_rec(0.01, GET.pieces[0].t + 5.0, coding="gzip"), GET) is True
    # and a head that waited is late whatever the coding
    assert answered_promptly(_rec(GET.head_t + SHARED_HEAD_S + 3.0, 9.0, coding="gzip"), GET) is False


def test_head_has_no_body_to_wait_for_and_an_error_cannot_say():
    assert answered_promptly(_rec(0.01, method="HEAD"), GET) is True
    assert answered_promptly(_rec(None, error="refused"), GET) is None


def test_a_skip_sent_nothing_and_a_browser_page_is_read_by_its_navigation_timing():
    assert answered_promptly(SimpleNamespace(skip=True), GET)
    page = SimpleNamespace(countdown=SimpleNamespace(navigation={"request_start": 0.1, "response_start": 0.15}),
                           stream=None)
    late = SimpleNamespace(countdown=SimpleNamespace(navigation={"request_start": 0.1, "response_start": 6.0}),
                           stream=None)
    assert answered_promptly(page, GET) is True and answered_promptly(late, GET) is False
    # WebKit's and Firefox's scripts: no headers over WebDriver, an EventSource's open may wait
    engine = SimpleNamespace(stream=SimpleNamespace(response_headers=[], head_s=5.6, events=[[5.6, "message"]]))
    assert answered_promptly(engine, GET) is None


CHECKS = ["delivery.progressive", "delivery.concurrent", "delivery.http10", "client.httpx", "client.requests", "framing.head-no-body",
          "delivery.compressed"]


def _run(url: str, tmp: Path) -> dict:
    args = [sys.executable, "-m", "conformance", url, "--concurrent-streams", "3", "--report-dir", str(tmp)]
    for c in CHECKS:
        args += ["--check", c]
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode in (0, 1), p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads((tmp / "results.json").read_text())


@pytest.mark.parametrize("workers", [None, 3])
def test_a_pool_just_large_enough_gets_the_verdicts_an_unlimited_server_gets(tmp_path, workers):
    """SSE tokens for about 5.7 s. Unlimited: every shared scenario recorded at once and kept.
    A pool of 3 threads (the 3 concurrent streams all served at once, so nothing showed a
    limit; 5 shared scenarios): those that waited for a worker are recorded again, and every
    verdict is the unlimited server's (all pass)."""
    argv = ["{python}", "-m", "conformance.targets.streams", "sse-tokens", "{address}"]
    server = launcher.start("sse-pool", argv + (["--workers", str(workers)] if workers else []), 1.0)
    try:
        res = _run(server.base_url + "/", tmp_path)
    finally:
        server.stop()
    verdicts = {r["check"]: r["verdict"] for r in res["results"]}
    assert verdicts == {c: "pass" for c in CHECKS}, [(r["check"], r["verdict"], r["observed"]) for r in res["results"]]
    schedule = res["targets"][0]["schedule"]
    assert "on trial" in schedule["side_by_side"]
    if workers is None:
        assert "recorded_again" not in schedule
    else:   # 5 shared scenarios, 3 workers: 2 had to wait
        assert len(schedule["recorded_again"]) == 2, schedule
