"""Interrupted runs (issue 18): SIGINT or SIGTERM ends the run within seconds, whatever is in
flight; every recording in progress is kept as it stands (``"interrupted": true``) and judged
where what arrived allows; every other selected check is ``skip`` "interrupted: …"; the summary,
``results.json`` and the process all say exit code 2; no server (or browser) is left behind; a
second signal ends the process at once.

Each test measures the time from the signal to the process's exit (printed; ``pytest -s``
shows it) and asserts a generous bound, since other developers' tests share the machine.
"""
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conformance import schema
from conformance.wire.recorder import INTERRUPTED
from processes import processes_tagged

ROOT = Path(__file__).resolve().parent.parent
EXIT_BOUND_S = 5.0   # asserted; measured times are about 1 s (docs/guide.md, "Exit codes")
# hypothesis (a dev dependency only) imports itself in every pytest run's terminal summary,
# about half a second on this machine: not part of what users' runs pay.
PYTEST = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]


class Suite:
    """The suite in a subprocess, as a terminal (or CI runner) starts it, its output read as it
    comes, and the processes it starts found by a tag in their environment."""

    def __init__(self, args, report_dir):
        self.tag = str(uuid.uuid4())
        env = dict(os.environ, CONFORMANCE_TEST_TAG=self.tag, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        self.report_dir = Path(report_dir)
        self.proc = subprocess.Popen([*PYTEST, "--report-dir", str(report_dir), *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=sigint_as_from_a_terminal)
        self.lines: queue.Queue = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def text(self) -> str:
        return "".join(self.output)

    def processes(self) -> list[int]:
        return [pid for pid in processes_tagged(f"CONFORMANCE_TEST_TAG={self.tag}") if pid != self.proc.pid]

    def wait_for(self, what: str, condition, timeout: float = 60.0, step: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended (exit {self.proc.returncode}) before {what}\n{self.text()[-3000:]}")
            value = condition()
            if value:
                return value
            time.sleep(step)  # polling /proc or the output: there is no event to wait on
        pytest.fail(f"not within {timeout:.0f} s: {what}\n{self.text()[-3000:]}")

    def wait_for_line(self, pattern: str, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                pytest.fail(f"no line matching {pattern!r} within {timeout:.0f} s\n{self.text()[-3000:]}")
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if re.search(pattern, line):
                return line

    def still_running_after(self, seconds: float) -> None:
        """The run is still going ``seconds`` from now (an endless stream does not end by itself)."""
        with pytest.raises(subprocess.TimeoutExpired):
            self.proc.wait(seconds)

    def interrupt(self, sig) -> float:
        """Send ``sig``; the seconds until the process has exited."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            left = self.processes()
            self.proc.send_signal(signal.SIGABRT)   # PYTHONFAULTHANDLER: every thread's stack
            self.proc.wait(30)
            pytest.fail(f"the run did not end within 30 s of {sig.name}; processes left: {left}\n{self.text()[-12000:]}")
        took = time.monotonic() - sent
        print(f"\n{sig.name}: the process exited {took:.2f} s after the signal")
        return took

    def results(self) -> dict:
        doc = json.loads((self.report_dir / "results.json").read_text())
        schema.validate(doc, "results")
        return doc

    def recording(self, rel: str) -> dict:
        rec = json.loads((self.report_dir / rel).read_text())
        schema.validate(rec, "recording")
        return rec

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def sigint_as_from_a_terminal() -> None:
    """Background jobs inherit SIGINT ignored (see test_cli.py); a terminal's Ctrl-C reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def suite(tmp_path):
    runs = []

    def start(*args):
        runs.append(Suite(args, tmp_path))
        return runs[-1]

    yield start
    for s in runs:
        s.stop()


def server_connections(pid: int) -> int:
    """How many sockets a server process has open (its listener included)."""
    try:
        return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:"))
    except OSError:
        return 0


def assert_interrupted_run(s: Suite, took: float) -> dict:
    """What every interrupted run must show: quick exit, exit 2 everywhere, nothing left, a
    valid results.json and report.html."""
    assert took < EXIT_BOUND_S, f"the run took {took:.2f} s to exit"
    out = s.text()
    assert s.proc.returncode == 2, out[-3000:]
    assert s.processes() == [], "processes left behind"
    assert "exit code: 2" in out and "exit code: 5" not in out, out[-3000:]
    assert "Traceback" not in out, out[-6000:]
    doc = s.results()
    assert doc["exit_code"] == 2 and doc["interrupted"] in ("SIGINT", "SIGTERM")
    assert (s.report_dir / "report.html").is_file()
    return doc


def interrupted_recordings(s: Suite, doc: dict) -> dict[str, dict]:
    """The recordings the interrupt cut short, by file, each valid against the schema."""
    out = {}
    for rel in {r["recording"] for r in doc["results"] if r["recording"]}:
        rec = s.recording(rel)
        if rec.get("interrupted"):
            out[rel] = rec
    return out


def not_run(doc: dict) -> list[dict]:
    return [r for r in doc["results"] if r["verdict"] == "skip" and r["observed"].startswith("interrupted:")]


# --- the inputs of issue 18 ----------------------------------------------------------------------

def test_sigterm_5_s_into_an_endless_sse_stream(suite):
    s = suite("--target", "control-sse-endless", "--check", "framing.", "--check", "delivery.first-byte",
              "--check", "delivery.progressive", "--check", "delivery.cadence")
    s.wait_for("the server started", s.processes)
    s.still_running_after(5.0)
    doc = assert_interrupted_run(s, s.interrupt(signal.SIGTERM))
    by_check = {r["check"]: r for r in doc["results"]}
    # every selected check has a result: judged on the stream so far, or not run with the reason
    from conformance.checks.catalogue import load_all, select
    load_all()
    assert set(by_check) == set(select(["framing.", "delivery.first-byte", "delivery.progressive",
                                        "delivery.cadence"], []))
    # the GET was streaming: it is kept as it stood, with the seconds of stream that arrived
    rel = by_check["delivery.progressive"]["recording"]
    (get,) = interrupted_recordings(s, doc).values()
    assert get["scenario"] == "get" and get["end"] == INTERRUPTED and get["body_bytes"] > 0
    assert len(get["reads"]) >= 5, "about 5 s of events at 2 per second"
    assert get["body_kept"].startswith("id: 0\nevent: token\ndata: ")
    # what arrived is judged: progressive, early, on cadence, and its head is sound
    for check in ("delivery.first-byte", "delivery.progressive", "delivery.cadence", "framing.content-type",
                  "framing.no-te-with-cl"):
        r = by_check[check]
        assert r["verdict"] == "pass" and r["recording"] == rel and "judged on what arrived" in r["observed"], r
        assert r["metrics"]["interrupted"] is True
    # a body cut short by the interrupt says nothing of its framing's end
    for check in ("framing.complete", "framing.strict-parse", "framing.chunk-syntax"):
        r = by_check[check]
        assert r["verdict"] == "skip" and r["observed"].startswith("interrupted: the 'get' recording was cut short"), r
    # scenarios that never started are listed as not run, without a recording
    for check in ("framing.head-no-body", "framing.http10-no-te", "framing.persistent-reuse"):
        r = by_check[check]
        assert r["verdict"] == "skip" and r["observed"].startswith("interrupted:") and r["recording"] is None, r
    assert "interrupted (SIGTERM)" in s.text()


def test_sigint_during_delivery_concurrent(suite):
    s = suite("--target", "control-sse-endless", "--check", "delivery.concurrent")
    (server,) = s.wait_for("the server started", s.processes)
    # five streams and the holder page: the listener plus six connections
    s.wait_for("the concurrent streams connected", lambda: server_connections(server) >= 7)
    s.still_running_after(2.0)   # about four events on each stream: enough to judge them on
    doc = assert_interrupted_run(s, s.interrupt(signal.SIGINT))
    (r,) = doc["results"]
    assert r["check"] == "delivery.concurrent"
    # each stream's first bytes came on time before the interrupt: that much is judged
    assert r["verdict"] == "pass" and "judged on what arrived" in r["observed"], r
    recs = interrupted_recordings(s, doc)
    assert list(recs) == [r["recording"]]
    assert "interrupted (SIGINT)" in s.text()


def test_sigint_during_the_browser_check(suite):
    from conformance.scenarios import browser
    why = browser.unavailable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser check for real, but {why}")
        pytest.skip(why)
    # the seed's own pace (1 s items): the page streams for 6 s
    s = suite("--target", "control-stream", "--check", "browser.progressive-render", "--count", "5",
              "--skip-check", "browser.progressive-render.webkit", "--skip-check", "browser.progressive-render.firefox")
    s.wait_for("Chromium started", lambda: any("chrom" in cmdline(pid) for pid in s.processes()), timeout=90)
    server = next(pid for pid in s.processes() if "conformance.targets.controls" in cmdline(pid))
    s.wait_for("Chromium requested the page", lambda: server_connections(server) >= 2, timeout=60)
    doc = assert_interrupted_run(s, s.interrupt(signal.SIGINT))
    # the prefix selects every engine's check; Chromium's was the one under way
    r = next(r for r in doc["results"] if r["check"] == "browser.progressive-render")
    assert r["verdict"] == "skip" and r["observed"].startswith("interrupted:"), r
    assert all(x["verdict"] in ("skip", "pass", "warn") for x in doc["results"]), doc["results"]


def test_sigterm_while_the_clients_read_an_endless_stream(suite):
    """httpx, requests and Node's fetch read with their own sockets (node in its own process):
    the interrupt reaches them too."""
    s = suite("--target", "control-sse-endless", "--check", "client.")
    (server,) = s.wait_for("the server started", s.processes)
    s.wait_for("a client is streaming", lambda: server_connections(server) >= 2)
    s.still_running_after(2.0)
    doc = assert_interrupted_run(s, s.interrupt(signal.SIGTERM))
    from conformance.checks.catalogue import load_all, select
    load_all()
    assert {r["check"] for r in doc["results"]} == set(select(["client."], []))
    assert interrupted_recordings(s, doc), "the client streaming when the signal came is kept"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_main_job_interrupted_halfway(suite, sig):
    s = suite("--target", "webpy", "--target", "webpy-seed")
    # the run takes about 50 s; a progress line says when a check has waited 20 s
    s.wait_for_line(r"waiting 20 s so far", timeout=120)
    doc = assert_interrupted_run(s, s.interrupt(sig))
    assert {t["id"] for t in doc["targets"]} == {"webpy", "webpy-seed"}
    # partial results: every selected check has one, some judged, some not run
    from conformance.checks.catalogue import load_all
    for target in ("webpy", "webpy-seed"):
        assert sorted(r["check"] for r in doc["results"] if r["target"] == target) == sorted(load_all())
    skipped = not_run(doc)
    judged = [r for r in doc["results"] if r not in skipped]
    assert skipped and judged, [(r["target"], r["check"], r["verdict"]) for r in doc["results"]]
    assert interrupted_recordings(s, doc), "recordings in progress are kept"


SECOND_SIGNAL = """
import os, signal
from conformance.targets import launcher
from conformance.engine import run
server = launcher.start("control-sse-endless", ["{python}", "-m", "conformance.targets.streams", "sse-endless", "{address}"])
print(server.process.pid, flush=True)
run._arm_second_signal()        # as the first SIGINT or SIGTERM does
os.kill(os.getpid(), signal.SIGTERM)
signal.pause()                  # not reached: the handler ends the process
raise SystemExit("the second signal did not end the process")
"""


def test_a_second_signal_ends_the_process_at_once(tmp_path):
    """Once the first signal is being handled, another ends the process at once (exit 2), the
    servers it started killed by process group."""
    tag = str(uuid.uuid4())
    env = dict(os.environ, CONFORMANCE_TEST_TAG=tag)
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-c", SECOND_SIGNAL], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "SIGTERM again: exiting at once (exit code 2)" in p.stderr
    server = int(p.stdout.split()[0])
    deadline = time.monotonic() + 5   # SIGKILL went to its group; the kernel reaps it
    while processes_tagged(f"CONFORMANCE_TEST_TAG={tag}") and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc: there is no event to wait on
    assert processes_tagged(f"CONFORMANCE_TEST_TAG={tag}") == [], f"server {server} left behind"
    assert time.monotonic() - started < 30


def test_two_signals_in_a_row_end_the_run_with_exit_2_and_nothing_left(suite):
    s = suite("--target", "control-sse-endless", "--check", "delivery.progressive")
    (server,) = s.wait_for("the server started", s.processes)
    s.still_running_after(1.0)
    s.proc.send_signal(signal.SIGTERM)
    # the first signal's handler tells the servers to stop: once this one is gone, it has run
    deadline = time.monotonic() + 10
    while Path(f"/proc/{server}").exists() and s.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # polling /proc
    if s.proc.poll() is None:
        s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(10)
    assert s.proc.returncode == 2, s.text()[-3000:]
    assert s.processes() == []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_run_interrupt_keeps_the_stream_so_far_in_process(tmp_path):
    """``Run.interrupt`` itself: the GET in progress ends at once as ``interrupted``, is judged on
    what arrived, and the HEAD queued behind it is listed as never started."""
    from conformance.checks.catalogue import CHECKS, load_all
    from conformance.engine.run import Options, Run, reset_after_interrupt
    from conformance.analysis.target import Target

    load_all()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    run = Run([Target("sse", None, "sse", 0.1, builtin="control-sse-endless")],
              Options(time_scale=0.2, report_dir=tmp_path))
    trun = run.targets[0]
    trun.scenarios = ["get", "head"]
    checks = [(trun, CHECKS[c]) for c in ("delivery.progressive", "framing.complete", "framing.head-no-body")]
    try:
        run.ensure_started()
        deadline = time.monotonic() + 30
        while not any(reads >= 5 for _, reads in list(trun.live.values())) and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the recording's progress: there is no event to wait on
        started = time.monotonic()
        run.interrupt(checks, "test")
        took = time.monotonic() - started
        assert took < 1.0, f"Run.interrupt took {took:.2f} s"
        by_check = {r["check"]: r for r in run.results}
        assert by_check["delivery.progressive"]["verdict"] == "pass"
        assert by_check["framing.complete"]["verdict"] == "skip"
        assert by_check["framing.head-no-body"]["observed"] == "interrupted: its 'head' recording was never started"
        get = trun.recording("get")
        assert get.end == INTERRUPTED and get.interrupted and len(get.reads) >= 5
        assert run.exit_code() == 2 and run.results_document()["interrupted"] == "test"
        assert run.left_running() == []
    finally:
        run.stop()
        reset_after_interrupt()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
