"""The suite as users run it: pytest and ``python -m conformance`` in a subprocess, exit codes,
results.json, usage errors, and no server left behind after an interrupt."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conformance.targets import launcher
from processes import processes_tagged

ROOT = Path(__file__).resolve().parent.parent
# The browser check has tests of its own (tests/test_browser.py) at a pace Chromium keeps.
# 100 ms per item: verdicts here must hold with a core burnt (docs/guide.md, "Stability"), which 50 ms
# intervals did not always do elsewhere.
FAST = ["--time-scale", "0.1", "--count", "4", "--skip-check", "browser."]


def suite(*args, report_dir, env=None, timeout=120):
    cmd = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
           "--report-dir", str(report_dir), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def results(report_dir):
    return json.loads((Path(report_dir) / "results.json").read_text())


def test_a_streaming_target_exits_0_and_writes_results(tmp_path):
    p = suite("--target", "control-stream", *FAST, report_dir=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:]
    doc = results(tmp_path)
    assert doc["exit_code"] == 0 and doc["targets"][0]["id"] == "control-stream"
    # skip: checks that do not apply (HTTP/2 without TLS; a large body or a piece log it does not have)
    assert {r["verdict"] for r in doc["results"]} <= {"pass", "info", "skip"}
    assert all((tmp_path / r["recording"]).is_file() for r in doc["results"])
    summary = next(line for line in p.stdout.splitlines() if line.startswith("control-stream "))
    assert "pass" in summary and "fail" not in summary and "error" not in summary


def test_a_buffered_target_exits_1_with_the_requirement_in_the_summary(tmp_path):
    # the check it reads alone: a whole run of control-buffered exits 1 in tests/test_shards.py (shard_dirs)
    p = suite("--target", "control-buffered", *FAST, "--check", "delivery.progressive", report_dir=tmp_path)
    assert p.returncode == 1
    assert "FAIL delivery.progressive [MUST] control-buffered" in p.stdout
    assert "requirement" in p.stdout and "observed" in p.stdout


def test_an_unreachable_target_is_an_error_with_its_own_exit_code(tmp_path):
    port = launcher.free_port()
    p = subprocess.run([sys.executable, "-m", "conformance", f"http://127.0.0.1:{port}/3",
                        "--report-dir", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 6
    assert f"connection refused by 127.0.0.1:{port}" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr
    # every check that applies is an error; those that cannot apply to a remote http target skip
    assert {r["verdict"] for r in results(tmp_path)["results"]} - {"skip"} == {"error"}


def test_a_non_2xx_answer_is_an_error_showing_the_status(tmp_path):
    server = launcher.start("control-stream", ["{python}", "-m", "conformance.targets.controls", "stream", "{address}"], 0.05)
    try:
        p = suite("--target-url", server.base_url + "/missing", "--check", "framing.complete", report_dir=tmp_path)
    finally:
        server.stop()
    assert p.returncode == 6
    (r,) = results(tmp_path)["results"]
    assert r["verdict"] == "error" and "HTTP 404" in r["observed"] and "not found" in r["observed"]


@pytest.mark.parametrize("args, message", [
    (["--target-url", "ftp://example/1"], "scheme must be http or https"),
    (["--target-url", "http://127.0.0.1:1/1", "--interval", "-1"], "--interval must be a positive number"),
    (["--target", "no-such-target"], "is not a built-in target"),
    (["--check", "framing.nope"], "unknown check ID framing.nope"),
    (["--header", "no colon here"], "expected 'Name: value'"),
    (["--target", "control-stream", "--concurrent-streams", "0"], "--concurrent-streams must be 1 to 64, not 0"),
    (["--target", "control-stream", "--report-dir", "/proc/no-such-dir"],
     "--report-dir /proc/no-such-dir: cannot write there: No such file or directory"),
])
def test_bad_input_is_a_usage_error_before_anything_starts(tmp_path, args, message):
    p = suite(*args, report_dir=tmp_path)
    assert p.returncode == 4
    assert message in p.stderr
    assert not (tmp_path / "results.json").exists()


def test_the_number_of_concurrent_streams_is_an_option(tmp_path):
    p = suite("--target", "control-stream", *FAST, "--check", "delivery.concurrent", "--concurrent-streams", "3",
              report_dir=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:]
    (r,) = results(tmp_path)["results"]
    assert r["verdict"] == "pass" and r["metrics"]["streams"] == 3 and r["observed"].startswith("3 streams at once")


def test_check_selection_by_prefix_and_no_check_left(tmp_path):
    p = suite("--target", "control-stream", *FAST, "--check", "framing.", "--skip-check", "framing.head-no-body",
              report_dir=tmp_path)
    assert p.returncode == 0
    assert {r["check"] for r in results(tmp_path)["results"]} == {
        "framing.strict-parse", "framing.chunked-once", "framing.no-te-with-cl", "framing.http10-no-te",
        "framing.chunk-syntax", "framing.complete", "framing.content-type", "framing.persistent-reuse",
        "framing.head-supported", "framing.self-delimited"}
    p = suite("--target", "control-stream", "--check", "framing.", "--skip-check", "framing.", report_dir=tmp_path)
    assert p.returncode == 5


def test_a_head_refused_while_get_streams_is_a_warning_not_an_error(tmp_path):
    """HEAD answered 405 while GET streams: framing.head-supported warns, framing.head-no-body is
    skip with the reason, nothing is error, and the run exits 0 (1 under --strict), never 6."""
    p = suite("--target", "control-head-405", *FAST, "--check", "framing.head-supported", "--check", "framing.head-no-body",
              "--check", "framing.complete",
              report_dir=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:]
    got = {r["check"]: r for r in results(tmp_path)["results"]}
    assert {c: r["verdict"] for c, r in got.items()} == {
        "framing.head-supported": "warn", "framing.head-no-body": "skip", "framing.complete": "pass"}
    assert "405 Method Not Allowed" in got["framing.head-supported"]["observed"]
    assert "framing.head-supported" in got["framing.head-no-body"]["observed"]
    p = suite("--target", "control-head-405", *FAST, "--check", "framing.head-supported", "--strict", report_dir=tmp_path)
    assert p.returncode == 1, p.stdout[-3000:]


def test_a_targets_file_error_names_file_line_and_key(tmp_path):
    f = tmp_path / "targets.toml"
    f.write_text('[[target]]\nid = "a"\nurl = "http://127.0.0.1:1/3"\n\n[[target]]\nid = "b"\nurl = "http://x/1"\nintervall = 2\n')
    p = suite("--targets-file", str(f), report_dir=tmp_path)
    assert p.returncode == 4
    assert f"{f}:8: target 2, key 'intervall': unknown key" in p.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_no_server_behind(tmp_path, sig):
    tag = f"CONFORMANCE_TEST_TAG={uuid.uuid4()}"
    # PYTHONFAULTHANDLER: a run that does not end is sent SIGABRT, which dumps every thread's stack.
    env = dict(os.environ, CONFORMANCE_TEST_TAG=tag.split("=", 1)[1], PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
                             "--target", "webpy", "--target", "webpy-seed", "--report-dir", str(tmp_path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=sigint_as_from_a_terminal)
    try:
        # Wait until both servers run (they carry the tag in their environment), then interrupt.
        deadline = time.monotonic() + 30
        while len(processes_tagged(tag)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # polling /proc: there is no event to wait on
        assert len(processes_tagged(tag)) >= 3, "the servers did not start"
        proc.send_signal(sig)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            left = [(pid, cmdline(pid)) for pid in processes_tagged(tag)]
            proc.send_signal(signal.SIGABRT)
            out, _ = proc.communicate(timeout=30)
            pytest.fail(f"the run did not end within 30 s of {sig.name}; processes left: {left}\n{out[-12000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out[-2000:]
    assert [(pid, cmdline(pid)) for pid in processes_tagged(tag)] == []
    assert (tmp_path / "results.json").exists()


def sigint_as_from_a_terminal() -> None:
    """A shell's background job (``cmd &``, as CI wrappers and nohup loops start it) inherits
    SIGINT ignored, and Python then leaves it ignored, as it should: Ctrl-C at the terminal is
    not meant for background jobs. This test is about a run that Ctrl-C does reach."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"


def test_a_check_waiting_on_a_long_recording_hears_of_its_progress(monkeypatch, tmp_path):
    """While a check waits on a recording, ``Run.on_wait`` is called every PROGRESS_EVERY seconds
    (the plugin prints it as a line), and the wait still returns the recording."""
    from concurrent.futures import Future

    from conformance.engine import run as run_module
    from conformance.engine.run import Options, Run
    from conformance.analysis.target import Target

    monkeypatch.setattr(run_module, "PROGRESS_EVERY", 0.01)
    run = Run([Target("t", "http://127.0.0.1:1/5")], Options(report_dir=tmp_path))
    trun = run.targets[0]
    future: Future = Future()
    heard = []

    def on_wait(t, scenario, waited):   # the recording ends after the second progress line
        heard.append((t.id, scenario, round(waited, 2), t.progress()))
        trun.live[("get", object())] = (1234, 5)
        if len(heard) == 2:
            future.set_result("the recording")

    run.on_wait = on_wait
    trun._futures["get"] = future
    assert trun.recording("get") == "the recording"
    assert heard == [("t", "get", 0.01, "no HTTP/1.1 exchange"), ("t", "get", 0.02, "get: 1 exchange, 1,234 bytes in 5 reads")]
