"""The recorder against hostile servers (targets/hostile.py): it always ends, stays small, says why.

Each mode runs as its own process (``targets.launcher``), started once for this module and
always stopped. Every recording here must return within a bound set by its own timeout or
deadline (never the server's pace), keep what it holds under the caps, and end with an error
or a definite ``end``, each one line.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from conformance.wire import recorder, tolerant
from conformance.wire.recorder import READ_SIZE, Exchange, record
from conformance.wire.recording import BODY_KEEP, HEAD_LIMIT, PIECES_KEEP, RAW_KEEP, READS_KEEP, Recording
from conformance.targets import launcher
from conformance.targets.hostile import MODES

SLACK = 3.0  # what a busy machine may add to a recording's own bound


@pytest.fixture(scope="module")
def servers():
    running: dict[str, launcher.Running] = {}

    def url(mode: str) -> str:
        if mode not in running:
            running[mode] = launcher.start(f"hostile-{mode}", ["{python}", "-m", "conformance.targets.hostile", mode, "{address}"])
        return running[mode].base_url + "/"

    try:
        yield url
    finally:
        for server in running.values():
            server.stop()


def timed(url: str, bound: float, **kw) -> Recording:
    t0 = time.monotonic()
    rec = record(url, **kw)
    took = time.monotonic() - t0
    assert took < bound + SLACK, f"the recording took {took:.1f} s (bound {bound} s)"
    check_bounded(rec)
    return rec


def check_bounded(rec: Recording) -> None:
    assert rec.end is not None or rec.error, "neither an end nor an error"
    for text in (rec.error, rec.end, rec.strict_error):
        assert text is None or ("\n" not in text and len(text) < 300), text
    assert len(rec.raw_kept) <= RAW_KEEP and len(rec.body_kept) <= BODY_KEEP
    assert len(rec.reads) <= READS_KEEP and len(rec.pieces) <= PIECES_KEEP
    assert len(rec.headers) <= HEAD_LIMIT and len(rec.framing_notes) <= 60
    json.dumps(rec.to_dict())


def test_every_mode_is_tested():
    tested = {"slow-head", "endless-chunks", "flood", "garbage", "reset-mid-chunk", "huge-chunk-size", "endless-head",
              "silent", "close"}
    assert tested == set(MODES)


def test_slow_head_times_out(servers):
    rec = timed(servers("slow-head"), 0.5, timeout=0.5, deadline=30)
    assert (rec.end, rec.error) == ("timeout", "no response head within 0.5 s")
    assert 1 <= rec.raw_bytes <= 2


def test_slow_head_meets_the_deadline(servers):
    rec = timed(servers("slow-head"), 1.0, timeout=10, deadline=1.0)
    assert (rec.end, rec.error) == ("deadline", "no response head before the recording's deadline")


def test_endless_chunks_stop_at_the_deadline(servers):
    rec = timed(servers("endless-chunks"), 0.6, timeout=5, deadline=0.6)
    assert (rec.end, rec.error, rec.status, rec.parser) == ("deadline", None, 200, "h11")
    assert len(rec.pieces) >= 2 and rec.body.startswith(b"tick 0\ntick 1\n")
    assert rec.end_t >= rec.pieces[-1].t


def test_flood_keeps_bounded_reads_pieces_and_memory(servers, monkeypatch):
    for module in (recorder, tolerant):
        monkeypatch.setattr(module, "PIECES_KEEP", 20)
    monkeypatch.setattr(recorder, "READS_KEEP", 20)
    url = servers("flood")
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        rec = record(url, timeout=5, deadline=0.8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - t0 < 0.8 + SLACK
    check_bounded(rec)
    assert (rec.end, rec.error) == ("deadline", None)
    assert len(rec.reads) == 20 and rec.reads_dropped > 0
    assert len(rec.pieces) == 20 and rec.pieces_dropped > 0
    assert rec.raw_bytes > 20 and len(rec.raw_kept) == min(rec.raw_bytes, RAW_KEEP)
    assert len(rec.body_kept) == min(rec.body_bytes, BODY_KEEP)
    # the kept raw bytes (twice at the end: the buffer and the text it becomes), the body, the
    # read buffer, and little else, however much the server sends
    assert peak < 2 * RAW_KEEP + 2 * BODY_KEEP + 4 * READ_SIZE + 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_garbage_is_abandoned_at_once(servers):
    rec = timed(servers("garbage"), 0.5, timeout=10, deadline=30)
    assert rec.end == "abandoned" and rec.error.startswith("not an HTTP/1.x response: it starts b'\\x00\\xffGARBAGE")
    assert rec.raw_bytes < 1000


def test_reset_mid_chunk(servers):
    rec = timed(servers("reset-mid-chunk"), 5, timeout=5, deadline=30)
    assert rec.end == "reset"
    if rec.head_t is None:  # the reset can overtake what was sent before it
        assert rec.error == "the connection was reset before a response head"
    else:
        assert rec.error is None and rec.body_bytes <= 0x200
        assert any(n.startswith("ConnectionResetError") for n in rec.framing_notes)


def test_huge_chunk_size(servers):
    rec = timed(servers("huge-chunk-size"), 0.6, timeout=5, deadline=0.6)
    assert (rec.end, rec.error, rec.status) == ("deadline", None, 200)
    assert rec.body_bytes >= 1024 and set(rec.body) == {ord("z")}
    assert rec.pieces[0].chunk_start and not any(p.chunk_end for p in rec.pieces)


def test_endless_head_is_abandoned_at_the_head_limit(servers):
    rec = timed(servers("endless-head"), 1.0, timeout=10, deadline=30)
    assert rec.end == "abandoned" and rec.error == f"response head larger than {HEAD_LIMIT} bytes"
    assert rec.raw_bytes <= HEAD_LIMIT + 2 * READ_SIZE and rec.status is None


def test_silent_server_times_out(servers):
    rec = timed(servers("silent"), 0.4, timeout=0.4, deadline=30)
    assert (rec.end, rec.error, rec.reads) == ("timeout", "no response head within 0.4 s", [])


@pytest.mark.parametrize("exchange", [Exchange(), Exchange("head", "HEAD", after_end_wait=0.2)], ids=["get", "head"])
def test_immediate_close(servers, exchange):
    rec = timed(servers("close"), 0.5, exchange=exchange, timeout=5, deadline=30)
    # a close with the request unread is sent as a reset by the kernel: either is an honest end
    assert rec.error in ("the connection closed before a response head",
                         "the connection was reset before a response head") or \
        rec.error.startswith("sending the request failed"), rec.error
    assert rec.status is None and rec.body_bytes == 0


@pytest.mark.parametrize("mode", ["silent", "garbage", "close"])
def test_tls_handshake_with_a_hostile_server_is_bounded(servers, mode):
    url = servers(mode).replace("http://", "https://")
    rec = timed(url, 0.4, timeout=0.4, deadline=30, insecure=True)
    assert rec.error.startswith("TLS handshake with 127.0.0.1:") and rec.tls is None and rec.reads == []


# --- whole runs: ``python -m conformance URL --timeout 3`` against a hostile server -------------
#
# Each run must end within RUN_BOUND_S and keep the suite's peak memory under RUN_RSS_BOUND, with
# every finding on one line. Measured on a shared 2-core machine (docs/guide.md, "Whole-run bounds"):
# slow-head about 11 s and 55 MiB, flood about 20 s and 260 MiB (15 s of it requests reading a
# byte at a time until the watch window); the bounds are the issue's.
RUN_BOUND_S = 60.0
RUN_RSS_BOUND = 500 * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def whole_run(url: str, report_dir: Path, *args: str) -> tuple[int, float, int, dict, str]:
    """Run the suite on ``url`` in a process of its own: (exit code, wall seconds, its peak RSS in
    bytes from wait4's rusage, results.json, output). Killed (and failed) past twice the bound."""
    out = report_dir / "output.txt"
    t0 = time.monotonic()
    with open(out, "w") as f:
        # WebKit and Firefox are left out: these runs bound the recorders' reads (their own page
        # loads of an endless flood are not bounded yet: issue 25)
        p = subprocess.Popen([sys.executable, "-m", "conformance", url, "--timeout", "3", "--report-dir", str(report_dir),
                              "--skip-check", "browser.progressive-render.webkit",
                              "--skip-check", "browser.progressive-render.firefox",
                              *args], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    killer = threading.Timer(2 * RUN_BOUND_S, lambda: os.killpg(p.pid, signal.SIGKILL))
    killer.start()
    try:
        _, status, usage = os.wait4(p.pid, 0)
    finally:
        killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - t0
    text = out.read_text()
    doc = json.loads((report_dir / "results.json").read_text())
    return p.returncode, took, usage.ru_maxrss * 1024, doc, text


def one_line_each(doc: dict) -> None:
    assert doc["results"]
    for r in doc["results"]:
        assert "\n" not in r["observed"] and len(r["observed"]) < 1000, (r["check"], r["observed"][:300])


def test_a_head_sent_a_byte_every_2_s_ends_the_run_fast(servers, tmp_path):
    """The head has a deadline of its own (max(2 x timeout, 10 s)): its bytes trickle in faster
    than the idle timeout, yet the GET gives up at 10 s, and every other scenario fails fast with
    the GET's reason instead of each waiting its own deadline."""
    code, took, rss, doc, out = whole_run(servers("slow-head"), tmp_path)
    print(f"slow-head: {took:.1f} s, peak RSS {rss / 2**20:.0f} MiB")
    assert code == 6, out[-3000:]
    assert took < RUN_BOUND_S and rss < RUN_RSS_BOUND, (took, rss)
    one_line_each(doc)
    assert {r["verdict"] for r in doc["results"]} == {"error"}
    (why,) = {r["observed"] for r in doc["results"]}   # one cause, said alike by every check
    assert why.startswith("no complete response head within 10 s (") and why.endswith(" bytes of it arrived)"), why


def test_an_endless_body_as_fast_as_loopback_allows_is_read_up_to_a_budget(servers, tmp_path):
    """An endless chunked body at full speed: each exchange stops reading at the read budget
    (end "budget"), and is judged on what was kept."""
    from conformance.scenarios.base import READ_BUDGET
    code, took, rss, doc, out = whole_run(servers("flood"), tmp_path)
    print(f"flood: {took:.1f} s, peak RSS {rss / 2**20:.0f} MiB")
    assert code == 1, out[-3000:]
    assert took < RUN_BOUND_S and rss < RUN_RSS_BOUND, (took, rss)
    one_line_each(doc)
    got = {r["check"]: r for r in doc["results"]}
    assert "error" not in {r["verdict"] for r in doc["results"]}
    assert got["framing.complete"]["verdict"] == "fail" and "read budget" in got["framing.complete"]["observed"]
    assert got["framing.head-no-body"]["verdict"] == "fail"
    rec = json.loads((tmp_path / got["framing.complete"]["recording"]).read_text())
    assert rec["end"] == "budget" and READ_BUDGET <= rec["raw_bytes"] < READ_BUDGET + 2 * READ_SIZE
