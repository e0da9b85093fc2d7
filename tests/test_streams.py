"""Real streams judged right with only a URL (targets/streams.py): the inputs of the issue "Real
streams", each run as a new user runs it, ``python -m conformance URL`` at the stream's own
timing, with no option but ``--check`` for the checks its test reads (the endless feed, whose
test bounds a default run's wall time, with every check but WebKit's and Firefox's, as
tests/test_hostile.py's endless floods: their page loads of an endless stream are not bounded
yet, issue 25; the token stream's default run is tests/test_main_job.py's URL run). Verdicts,
exit codes and the run's wall time are asserted.

Margins (docs/guide.md, "Timing margins", the schedule-free rule): the token stream's longest pause is
250 ms, a quarter of the 1 s silence a held release needs; the held and buffered streams release
after silences of 1.6-5.7 s, at least 1.5 times it. The gzip tail is held 500 ms, twice the
250 ms a cut-open event needs.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.targets import launcher

ROOT = Path(__file__).resolve().parent.parent


# Each control's run, and the checks its test reads (None: every check but the two engines').
MODES = {"sse-endless": None,
         "sse-tokens": ("delivery.first-byte", "delivery.progressive", "delivery.concurrent", "delivery.compressed",
                        "delivery.http10"),
         "sse-held": ("delivery.first-byte", "delivery.progressive", "delivery.head-early"),
         "sse-buffer4k": ("delivery.first-byte", "delivery.progressive"),
         "ndjson-lines": ("delivery.progressive",),
         "sse-gzip-tail": ("delivery.progressive", "delivery.compressed"),
         "sse-gzip-held": ("delivery.first-byte", "delivery.progressive", "delivery.compressed", "delivery.head-early"),
         "sse-head-late-gzip": ("delivery.progressive", "delivery.compressed", "delivery.head-early")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every control's run, four at a time (each mostly waits on its stream's own timing); the
    endless feed's default run first, as it takes longest."""
    base = tmp_path_factory.mktemp("streams")
    with ThreadPoolExecutor(4) as pool:
        futures = {m: pool.submit(run_url, m, base / m, *(a for c in checks for a in ("--check", c)) if checks
                                  else ("--skip-check", "browser.progressive-render."))   # WebKit's, Firefox's
                   for m, checks in MODES.items()}
        return {m: f.result() for m, f in futures.items()}


def run_url(mode: str, tmp_path: Path, *extra: str, timeout: float = 240):
    """Start the control, run the suite against its URL alone; (exit code, results, seconds, output)."""
    server = launcher.start(f"control-{mode}", ["{python}", "-m", "conformance.targets.streams", mode, "{address}"], 1.0)
    try:
        report = tmp_path / "report"
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "conformance", server.base_url + "/", "--report-dir", str(report),
                            *extra], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        took = time.monotonic() - t0
    finally:
        server.stop()
    doc = json.loads((report / "results.json").read_text())
    return p.returncode, doc, took, p.stdout + p.stderr


def verdicts(doc) -> dict[str, str]:
    return {r["check"]: r["verdict"] for r in doc["results"]}


def test_an_irregular_token_stream_passes(runs):
    code, doc, _, out = runs["sse-tokens"]
    v = verdicts(doc)
    assert code == 0, out
    assert doc["targets"][0]["profile"] == "sse" and doc["targets"][0]["interval_s"] is None
    for cid in ("delivery.first-byte", "delivery.progressive", "delivery.concurrent", "delivery.compressed",
                "delivery.http10"):
        assert v[cid] == "pass", (cid, out)
    assert "error" not in v.values()


def test_the_same_events_held_to_the_end_fail(runs):
    code, doc, _, out = runs["sse-held"]
    v = verdicts(doc)
    assert code == 1, out
    assert v["delivery.first-byte"] == v["delivery.progressive"] == "fail"
    progressive = next(r for r in doc["results"] if r["check"] == "delivery.progressive")
    assert "held to the end" in progressive["observed"] and "40 of 40 events" in progressive["observed"]
    # one cause, said once: the findings it explains point at it
    causes = doc["targets"][0]["diagnosis"]
    assert len(causes) == 1 and "held" in causes[0]["cause"]
    assert progressive["cause"] == 0 and "delivery.first-byte" in causes[0]["explains"]


def test_a_4k_buffer_flushed_when_full_fails(runs):
    code, doc, _, out = runs["sse-buffer4k"]
    v = verdicts(doc)
    assert code == 1, out
    assert v["delivery.progressive"] == "fail" and v["delivery.first-byte"] == "fail"
    progressive = next(r for r in doc["results"] if r["check"] == "delivery.progressive")
    assert "4096 bytes each" in progressive["observed"]
    assert doc["targets"][0]["diagnosis"][0]["kind"] == "buffer"


def test_an_endless_feed_is_judged_within_a_minute(runs):
    code, doc, took, out = runs["sse-endless"]
    v = verdicts(doc)
    assert code == 0, out
    assert "error" not in v.values(), out
    assert took < 60, f"the run took {took:.0f} s"
    complete = next(r for r in doc["results"] if r["check"] == "framing.complete")
    assert complete["verdict"] == "skip" and "still open" in complete["observed"]
    assert doc["targets"][0]["watch_s"] == 15.0


def test_ndjson_lines_pass(runs):
    code, doc, _, out = runs["ndjson-lines"]
    assert code == 0, out
    assert doc["targets"][0]["profile"] == "ndjson"
    assert verdicts(doc)["delivery.progressive"] == "pass"


def test_a_gzip_tail_held_until_the_next_event_fails_under_compression_only(runs):
    code, doc, _, out = runs["sse-gzip-tail"]
    v = verdicts(doc)
    assert code == 1, out
    assert v["delivery.progressive"] == "pass" and v["delivery.compressed"] == "fail"
    comp = next(r for r in doc["results"] if r["check"] == "delivery.compressed")
    assert "cut open" in comp["observed"] and "held only under gzip" in comp["observed"].lower()


def test_gzip_holding_the_whole_body_fails_and_names_the_coding(runs):
    code, doc, _, out = runs["sse-gzip-held"]
    v = verdicts(doc)
    assert code == 1, out
    assert v["delivery.progressive"] == "pass" and v["delivery.compressed"] == "fail"
    causes = doc["targets"][0]["diagnosis"]
    assert [c["kind"] for c in causes] == ["compression"] and "gzip" in causes[0]["cause"]
    assert "CAUSE 1" in out and out.count("held only under compression") == 1


def test_a_head_held_for_the_first_write_under_compression_warns(runs):
    code, doc, _, out = runs["sse-head-late-gzip"]
    head = next(r for r in doc["results"] if r["check"] == "delivery.head-early")
    assert head["verdict"] == "warn", out
    assert "only for the browser-style (gzip)" in head["observed"]
    assert code == 0, out


@pytest.mark.parametrize("profile", ["sse", "ndjson"])
def test_a_number_at_the_end_of_a_stream_url_is_not_a_countdown_length(profile):
    from conformance.analysis.target import Target
    t = Target("t", "http://h/events/5", profile, None)
    assert t.countdown_length is None
    assert Target("t", "http://h/5", "countdown", 1.0).countdown_length == 5


def test_expect_bursts_still_counts_without_a_schedule(tmp_path):
    """--expect-bursts is a floor on separate releases under the schedule-free rule too: 30 lines
    100 ms apart cannot make 50 separate releases."""
    code, doc, _, out = run_url("ndjson-lines", tmp_path, "--check", "delivery.progressive", "--expect-bursts", "50")
    progressive = next(r for r in doc["results"] if r["check"] == "delivery.progressive")
    assert code == 1 and progressive["verdict"] == "fail", out
    assert "--expect-bursts asks for at least 50" in progressive["observed"]
