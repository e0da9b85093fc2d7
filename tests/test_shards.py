"""Scaling out: ``pytest conformance -n N`` (pytest-xdist) gives one complete results.json with
each target recorded once, ``python -m conformance.report merge`` joins CI shards, and
``python -m conformance --help`` is the suite's own usage."""
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conformance.checks import catalogue

from conformance import schema
from conformance.plugin.distributed import plan, scope_of, target_scope
from conformance.report.shards import MergeError, merge_documents
from conformance.plugin.usage import GROUPS, plugin_options
from conformance.targets import launcher
from conformance.targets.controls import Exchange, serve_requests

pytest.importorskip("xdist")

ROOT = Path(__file__).resolve().parent.parent
# 100 ms items, as tests/test_cli.py (docs/guide.md, "Stability"); the browser has tests of its own.
FAST = ["--time-scale", "0.1", "--count", "4", "--skip-check", "browser."]
TWO = ["--target", "control-stream", "--target", "control-buffered"]


def suite(*args, report_dir, timeout=120):
    cmd = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
           "--report-dir", str(report_dir), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def cli(*args, cwd=ROOT, timeout=120):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def results(report_dir):
    return json.loads((Path(report_dir) / "results.json").read_text())


def pairs(doc):
    return collections.Counter((r["target"], r["check"]) for r in doc["results"])


def expected_pairs(targets):
    catalogue.load_all()
    return {(t, c) for t in targets for c in catalogue.select([], ["browser."])}


# --- pytest -n 2 ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def n2_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("n2")
    return suite("-n", "2", *TWO, *FAST, "--junitxml", str(out / "junit.xml"), report_dir=out), out


def test_n2_writes_one_complete_results_json(n2_run):
    p, out = n2_run
    assert p.returncode == 1, p.stdout[-3000:]          # control-buffered fails, as without -n
    doc = results(out)                                  # one JSON document, not two concatenated
    schema.validate(doc, "results")
    counts = pairs(doc)
    assert set(counts) == expected_pairs(["control-stream", "control-buffered"])
    assert set(counts.values()) == {1}                 # every (target, check) exactly once
    assert [t["id"] for t in doc["targets"]] == ["control-stream", "control-buffered"]
    assert all(t["url"] for t in doc["targets"])
    assert doc["exit_code"] == 1
    assert {r["verdict"] for r in doc["results"] if r["target"] == "control-stream"} <= {"pass", "info", "skip"}
    assert all((out / r["recording"]).is_file() for r in doc["results"] if r["recording"])
    assert (out / "report.html").is_file() and "control-buffered" in (out / "report.html").read_text()
    assert not (out / ".partial").exists()              # the workers' partial documents, merged and gone
    # the suite's own summary, from the controller, over both workers' results
    assert "FAIL delivery.progressive [MUST] control-buffered" in p.stdout
    assert "exit code: 1" in p.stdout


def test_n2_junit_reads_as_without_n(n2_run):
    """JUnit from the controller: one testcase per (target, check), named by check ID, and a
    failure's message leads with the facts the worker observed."""
    import xml.etree.ElementTree as ET
    _, out = n2_run
    cases = ET.parse(out / "junit.xml").getroot().iter("testcase")
    names = {c.get("name"): c for c in cases}
    assert set(names) == {f"{c}[{t}]" for t, c in pairs(results(out))}
    message = names["delivery.progressive[control-buffered]"].find("failure").get("message")
    assert message.startswith("FAIL delivery.progressive [MUST] control-buffered\nobserved: ")


def test_n2_gives_the_verdicts_of_a_single_process_run(n2_run, tmp_path):
    _, out = n2_run
    p = suite(*TWO, *FAST, report_dir=tmp_path)
    assert p.returncode == 1
    one = {(r["target"], r["check"]): r["verdict"] for r in results(tmp_path)["results"]}
    assert {(r["target"], r["check"]): r["verdict"] for r in results(out)["results"]} == one


class CountingServer:
    """The positive control's countdown, in this process, counting the requests it answers."""

    def __init__(self, interval=0.1):
        self.requests = collections.Counter()
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/4"
        self.interval = interval
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_requests, args=(conn, self._answer(conn)), daemon=True).start()

    def _answer(self, conn):
        def answer(method, path, version, head):
            with self._lock:
                self.requests[(method, path, version)] += 1
            return Exchange("stream", conn, self.interval).run(method, path, version)
        return answer

    def close(self):
        self.listener.close()


def test_n2_records_each_target_once(tmp_path):
    """Each server sees exactly the requests a single-process run makes: under -n 2 no target
    is recorded by two workers (python -m conformance passes -n on to pytest). Both runs select
    the framing checks: eleven items per target over four scenarios (GET, HEAD, HTTP/1.0, the
    browser-style GET), any of which a second worker would record again."""
    seen = {}
    for label, extra in (("one", []), ("n2", ["-n", "2"])):
        servers = [CountingServer(), CountingServer()]
        try:
            p = cli("conformance", servers[0].url, servers[1].url, "--interval", "0.1", "--check", "framing.",
                    "--report-dir", str(tmp_path / label), *extra)
        finally:
            for s in servers:
                s.close()
        assert p.returncode == 0, p.stdout[-3000:]
        assert set(pairs(results(tmp_path / label)).values()) == {1}
        seen[label] = [dict(s.requests) for s in servers]
    assert all(seen["one"]) and seen["n2"] == seen["one"], seen


def test_n2_exit_code_is_the_merged_runs(tmp_path):
    """An unreachable target on one worker and a passing one on the other: 6, as without -n. The
    framing checks are enough for both (the scheduler hands out targets, not checks)."""
    port = launcher.free_port()
    p = suite("-n", "2", "--target", "control-stream", "--target-url", f"http://127.0.0.1:{port}/3", *FAST,
              "--check", "framing.", report_dir=tmp_path)
    assert p.returncode == 6, p.stdout[-3000:]
    doc = results(tmp_path)
    assert doc["exit_code"] == 6 and {t["id"] for t in doc["targets"]} == {"control-stream", f"http://127.0.0.1:{port}/3"}
    assert {r["verdict"] for r in doc["results"] if r["target"] != "control-stream"} - {"skip"} == {"error"}


@pytest.mark.parametrize("sig, whom", [(signal.SIGINT, "group"), (signal.SIGTERM, "controller")])
def test_an_interrupted_n2_run_ends_its_workers_and_servers_and_writes_results(tmp_path, sig, whom):
    """Ctrl-C at a terminal (SIGINT to the whole process group) or CI cancelling the job
    (SIGTERM to the controller): exit 2, no worker or server left, results.json written."""
    from processes import processes_tagged
    tag = str(uuid.uuid4())
    env = dict(os.environ, CONFORMANCE_TEST_TAG=tag, PYTHONFAULTHANDLER="1")

    def as_from_a_terminal():   # see test_cli.sigint_as_from_a_terminal; its own group, to signal
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()

    proc = subprocess.Popen([sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider", "-n", "2",
                             "--target", "webpy", "--target", "webpy-seed", "--report-dir", str(tmp_path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=as_from_a_terminal)
    try:
        # controller, two workers, two servers: all carry the tag in their environment
        deadline = time.monotonic() + 60
        while len(processes_tagged(tag)) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)  # polling /proc: there is no event to wait on
        assert len(processes_tagged(tag)) >= 5, "the workers' servers did not start"
        if whom == "group":
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, out[-2000:]
    assert processes_tagged(tag) == []
    doc = results(tmp_path)
    schema.validate(doc, "results")
    # one exit code (issue 18): the merged results and the summary say 2, as the process does
    assert doc["exit_code"] == 2 and doc["interrupted"], out[-2000:]
    assert "exit code: 2" in out and not re.search(r"exit code: [013456]", out), out[-2000:]
    assert not (tmp_path / ".partial").exists()


def test_the_scheduler_keeps_a_target_on_one_worker():
    ids = [f"conformance/checks/test_delivery.py::test_{c}[{t}]" for t in ("a", "http://[::1]:80/x", "c") for c in "xyz"]
    ids += ["tests/test_other.py::test_one[a]", "checks/test_rfc9112_framing.py::test_complete[a]"]
    assert target_scope(ids[3]) == "target:http://[::1]:80/x"
    assert target_scope("tests/test_other.py::test_one[a]") is None
    # the rootdir may be the checks dir itself (python -m conformance run elsewhere)
    assert target_scope("test_delivery.py::test_first_byte[a]") == "target:a"
    assigned = plan(ids, 2)
    by_target = collections.defaultdict(set)
    for n in ids:
        by_target[target_scope(n)].add(assigned[scope_of(n)])
    assert all(len(workers) == 1 for workers in by_target.values())
    assert set(assigned.values()) == {0, 1}


# --- python -m conformance.report merge -----------------------------------------------------

@pytest.fixture(scope="module")
def shard_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("shards")
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
                               "--target", name, *FAST, "--report-dir", str(base / name)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name in ("control-stream", "control-buffered")]
    assert [p.wait(timeout=120) for p in procs] == [0, 1]
    return base / "control-stream", base / "control-buffered"


def test_merge_joins_shards(shard_dirs, n2_run, tmp_path):
    out = tmp_path / "merged"
    p = cli("conformance.report", "merge", *map(str, shard_dirs), "--out", str(out))
    assert p.returncode == 1, p.stdout + p.stderr       # the merged run's exit code: a check failed
    doc = results(out)
    schema.validate(doc, "results")
    union = collections.Counter()
    for d in shard_dirs:
        union += pairs(results(d))
    assert pairs(doc) == union and set(union.values()) == {1}
    assert pairs(doc) == pairs(results(n2_run[1]))      # what -n 2 gives in one run
    assert doc["exit_code"] == 1 and [t["id"] for t in doc["targets"]] == ["control-stream", "control-buffered"]
    for r in doc["results"]:
        if r["recording"]:
            assert (out / r["recording"]).is_file()
    assert (out / "report.html").is_file()
    assert "merged 2 shards: 2 targets" in p.stdout


def test_merge_of_passing_shards_exits_0(shard_dirs, tmp_path):
    p = cli("conformance.report", "merge", str(shard_dirs[0]), "--out", str(tmp_path / "m"))
    assert p.returncode == 0, p.stderr
    assert results(tmp_path / "m")["exit_code"] == 0


def _broken(tmp_path, shard, name, edit):
    d = tmp_path / name
    shutil.copytree(shard, d)
    path = d / "results.json"
    path.write_text(edit(path.read_text()))
    return d


@pytest.mark.parametrize("make, message", [
    (lambda tmp, s: shutil.copytree(s, tmp / "again"), "is in two shards"),
    (lambda tmp, s: _broken(tmp, s, "concatenated", lambda t: t + t), "not one JSON document"),
    (lambda tmp, s: _broken(tmp, s, "bad-verdict", lambda t: t.replace('"verdict": "pass"', '"verdict": "maybe"', 1)),
     "not a valid results.json"),
    (lambda tmp, s: _broken(tmp, s, "other-version", lambda t: t.replace('"version": "', '"version": "9', 1)),
     "different suite versions"),
    (lambda tmp, s: tmp / "missing", "no such directory"),
    (lambda tmp, s: (tmp / "empty").mkdir() or tmp / "empty", "no results.json there"),
])
def test_merge_refuses_conflicting_or_invalid_shards(shard_dirs, tmp_path, make, message):
    other = make(tmp_path, shard_dirs[0])
    out = tmp_path / "out"
    p = cli("conformance.report", "merge", str(shard_dirs[0]), str(other), "--out", str(out))
    assert p.returncode == 4 and message in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and not out.exists()   # nothing written


def test_merge_documents_recomputes_exit_code_and_gate(shard_dirs, tmp_path):
    docs = [(str(d), results(d)) for d in shard_dirs]
    merged = merge_documents(docs)
    assert merged["exit_code"] == 1 and "gate" not in merged
    # gated against a baseline that already had control-buffered's failures: no regression
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(merged))
    gated = merge_documents(docs, baseline=baseline)
    assert gated["exit_code"] == 0 and gated["gate"]["passed"] is True
    with pytest.raises(MergeError, match="lacks"):
        bad = json.loads(json.dumps(docs[0][1]))
        bad["results"][0]["target"] = "nobody"
        merge_documents([("x", bad)])


# --- python -m conformance --help -----------------------------------------------------------

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_is_the_suites_own_and_short(flag):
    p = cli("conformance", flag)
    assert p.returncode == 0 and not p.stderr
    text = p.stdout
    lines = text.splitlines()
    assert lines[0] == "usage: python -m conformance [URL ...] [options]"
    assert len(lines) < 100 and max(map(len, lines)) <= 110
    for title, _ in GROUPS:
        assert f"\n{title}:\n" in text
    for name in plugin_options():          # generated from the plugin: no option left out
        assert f"  {name}" in text, name
    for code in (0, 1, 2, 4, 5, 6):
        assert f"\n  {code}  " in text
    assert text.count("\n  python -m conformance ") == 3     # three examples
    assert "--capture" not in text and "reporting:" not in text   # not pytest's


def test_pytest_help_is_untouched():
    p = cli("pytest", "--help", "-p", "no:cacheprovider")
    assert p.returncode == 0
    assert "--capture" in p.stdout and "HTTP streaming conformance" in p.stdout
    assert len(p.stdout.splitlines()) > 200


def test_merge_help():
    p = cli("conformance.report", "merge", "--help")
    assert p.returncode == 0 and "--out DIR" in p.stdout and "exit code" in p.stdout


def test_the_sharded_workflow_uses_options_the_cli_knows():
    """examples/github-actions-sharded.yml: the shard jobs' options are in --help, the merge
    job's in merge --help, and the merge names every shard of the matrix."""
    workflow = (ROOT / "examples" / "github-actions-sharded.yml").read_text()
    lines = workflow.splitlines()

    def options_after(start):
        used = set()
        for i, line in enumerate(lines):
            if line.strip().startswith(start):
                for more in lines[i:]:
                    if more.strip() and not more.strip().startswith(("--", "-n", start, "shards/")):
                        break
                    used |= {tok for tok in more.split() if tok.startswith("-")}
        return used

    run_opts = options_after("http-stream-conformance")
    merge_opts = options_after("python -m conformance.report merge")
    assert {"--targets-file", "-n", "--report-dir"} <= run_opts and {"--out", "--baseline"} <= merge_opts
    helptext = cli("conformance", "--help").stdout
    assert not {o for o in run_opts if o not in helptext}
    merge_help = cli("conformance.report", "merge", "--help").stdout
    assert not {o for o in merge_opts if o not in merge_help}
    shards = workflow.split("shard: [", 1)[1].split("]", 1)[0].replace(",", " ").split()
    assert all(f"shards/conformance-shard-{s}" in workflow for s in shards)
