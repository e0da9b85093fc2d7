"""The CI gate (``--baseline``) and majority verdicts (``--repeat``): the comparison as data, and
the suite run as CI runs it, with its exit codes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.checks.catalogue import Finding
from conformance.engine.gate import BaselineError, compare, load_baseline, majority

ROOT = Path(__file__).resolve().parent.parent
# Checks whose verdicts on the controls do not depend on the machine's load: framing, and the
# buffered control's delivery (held to the end, it fails at any pace).
FRAMING = ["framing.complete", "framing.strict-parse", "framing.chunk-syntax"]
DELIVERY = ["delivery.progressive", "delivery.first-byte"]
FAST = ["--time-scale", "0.1", "--count", "3"]


def only(checks):
    return [a for c in checks for a in ("--check", c)]


def r(target, check, verdict):
    return {"target": target, "check": check, "verdict": verdict}


def test_only_a_pass_that_now_fails_or_errors_is_a_regression():
    baseline = {("a", "x"): "pass", ("a", "y"): "pass", ("a", "z"): "fail", ("a", "w"): "pass",
                ("a", "v"): "info", ("a", "u"): "warn", ("a", "gone"): "pass", ("b", "x"): "pass",
                ("a", "s"): "skip"}
    now = [r("a", "x", "fail"), r("a", "y", "error"), r("a", "z", "pass"), r("a", "w", "warn"),
           r("a", "v", "info"), r("a", "u", "pass"), r("a", "new", "fail"), r("c", "x", "fail"),
           r("a", "s", "fail")]
    cmp = compare(baseline, now, "base.json")
    assert [(c.target, c.check, c.before, c.after) for c in cmp.regressions] == [("a", "x", "pass", "fail"),
                                                                                 ("a", "y", "pass", "error")]
    assert {(c.check, c.before) for c in cmp.improvements} == {("z", "fail"), ("u", "warn")}
    assert [c.check for c in cmp.new_warnings] == ["w"]
    assert {(c.target, c.check) for c in cmp.new_failures} == {("a", "new"), ("c", "x")}
    # a target this run did not include is not "not run" check by check
    assert [(c.target, c.check) for c in cmp.not_run] == [("a", "gone")]
    assert not cmp.passed
    text = "\n".join(line for _, line in cmp.summary_lines())
    assert "2 regression(s), 2 improvement(s)" in text and "regression: a framing" not in text
    assert "regression: a x: pass -> fail" in text and "improvement: a z: fail -> pass" in text
    assert compare(baseline, [r("a", "x", "pass"), r("a", "z", "fail")]).passed


def test_majority_takes_the_most_common_verdict_and_the_worse_on_a_tie():
    f = lambda v, **m: Finding(v, f"observed {v}", metrics=m)  # noqa: E731
    i, got = majority([f("pass"), f("fail"), f("pass")])
    assert got.verdict == "pass" and i in (0, 2)
    assert got.metrics["repeat_runs"] == 3 and got.metrics["repeat_verdicts"] == "pass 2, fail 1"
    assert "majority of 3 runs" in got.observed
    assert majority([f("pass"), f("fail")])[1].verdict == "fail"
    assert majority([f("warn"), f("error"), f("pass"), f("fail")])[1].verdict == "error"
    assert majority([f("info"), f("skip")])[1].verdict == "skip"
    single = f("pass", x=1)
    assert majority([single]) == (0, single)


def test_the_median_run_gives_the_metrics():
    runs = [Finding("pass", "a", metrics={"first_byte_s": 0.9, "bursts": 7}),
            Finding("pass", "b", metrics={"first_byte_s": 0.1, "bursts": 5}),
            Finding("fail", "c", metrics={"first_byte_s": 9.0, "bursts": 1}),
            Finding("pass", "d", metrics={"first_byte_s": 0.3, "bursts": 6}),
            Finding("pass", "e", metrics={"first_byte_s": 0.2, "bursts": 8})]
    i, got = majority(runs)
    # among the four passes, run d is second on first_byte_s and second on bursts: the middle
    assert i == 3 and got.metrics["first_byte_s"] == 0.3 and got.observed.startswith("d ")


def test_a_baseline_must_be_a_results_file(tmp_path):
    with pytest.raises(BaselineError, match="no-such.json"):
        load_baseline(tmp_path / "no-such.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BaselineError, match="not JSON"):
        load_baseline(bad)
    bad.write_text(json.dumps({"results": [{"target": "a"}]}))
    with pytest.raises(BaselineError, match=r"results\[0\]"):
        load_baseline(bad)


def cli(*args, report_dir):
    return subprocess.run([sys.executable, "-m", "conformance", *args, "--report-dir", str(report_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


def results(report_dir):
    return json.loads((Path(report_dir) / "results.json").read_text())


def write_baseline(path, target, verdict, checks):
    path.write_text(json.dumps({"schema": 1, "results": [r(target, c, verdict) for c in checks]}))
    return path


def test_a_regression_fails_the_gate_with_exit_1(tmp_path):
    base = write_baseline(tmp_path / "base.json", "control-buffered", "pass", ["framing.complete", *DELIVERY])
    p = cli("--target", "control-buffered", *FAST, *only(["framing.complete", *DELIVERY]), "--baseline", str(base),
            report_dir=tmp_path / "r")
    assert p.returncode == 1, p.stdout[-3000:]
    assert "gate against" in p.stdout and "2 regression(s)" in p.stdout
    assert "regression: control-buffered delivery.progressive: pass -> fail" in p.stdout
    doc = results(tmp_path / "r")
    assert doc["exit_code"] == 1 and not doc["gate"]["passed"]
    assert {c["check"] for c in doc["gate"]["regressions"]} == {"delivery.progressive", "delivery.first-byte"}


def test_known_failures_pass_the_gate_and_improvements_are_listed(tmp_path):
    # The same failing target as in the baseline: no regression, so exit 0 though checks fail.
    checks = only(["framing.complete", *DELIVERY])
    first = cli("--target", "control-buffered", *FAST, *checks, report_dir=tmp_path / "first")
    assert first.returncode == 1
    again = cli("--target", "control-buffered", *FAST, *checks, "--baseline",
                str(tmp_path / "first" / "results.json"), report_dir=tmp_path / "again")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "0 regression(s)" in again.stdout and "FAIL delivery.progressive" in again.stdout
    # A target that failed everything in the baseline and now passes: improvements, exit 0.
    base = write_baseline(tmp_path / "base.json", "control-stream", "fail", FRAMING)
    p = cli("--target", "control-stream", *FAST, *only(FRAMING), "--baseline", str(base), report_dir=tmp_path / "r")
    assert p.returncode == 0, p.stdout[-3000:]
    assert "3 improvement(s)" in p.stdout and "improvement: control-stream framing.complete: fail -> pass" in p.stdout
    assert len(results(tmp_path / "r")["gate"]["improvements"]) == 3


def test_an_unusable_baseline_is_a_usage_error(tmp_path):
    p = cli("--target", "control-stream", *FAST, "--baseline", str(tmp_path / "missing.json"), report_dir=tmp_path)
    assert p.returncode == 4
    assert "--baseline" in p.stderr and "missing.json" in p.stderr
    assert not (tmp_path / "results.json").exists()


def test_repeat_records_each_scenario_n_times_and_judges_by_majority(tmp_path):
    p = cli("--target", "control-stream", *FAST, *only(FRAMING), "--repeat", "3", report_dir=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:]
    doc = results(tmp_path)
    assert all(res["metrics"]["repeat_runs"] == 3 for res in doc["results"])
    assert all(res["metrics"]["repeat_verdicts"] == "pass 3" for res in doc["results"])
    # the recording shown is the median run's, whichever round made it
    rounds = {"recordings/control-stream-get.json", "recordings/control-stream-get-run2.json",
              "recordings/control-stream-get-run3.json"}
    assert {res["recording"] for res in doc["results"]} <= rounds
    assert all((tmp_path / res["recording"]).is_file() for res in doc["results"])
    p = cli("--target", "control-stream", "--repeat", "0", report_dir=tmp_path / "bad")
    assert p.returncode == 4 and "--repeat must be at least 1" in p.stderr


def test_the_example_workflow_uses_options_the_cli_knows():
    workflow = (ROOT / "examples" / "github-actions-conformance.yml").read_text()
    helptext = subprocess.run([sys.executable, "-m", "conformance", "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60).stdout
    used = set()
    lines = workflow.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("http-stream-conformance"):
            for more in [line] + lines[i + 1:]:
                if more is not line and not more.strip().startswith("--"):
                    break
                used |= {tok.split("=")[0] for tok in more.split() if tok.startswith("--")}
    assert {"--targets-file", "--baseline", "--repeat", "--junit-xml", "--target"} <= used
    unknown = {opt for opt in used if opt not in helptext}
    assert not unknown, unknown
    from conformance.engine.targets_file import load
    assert [t.id for t in load(ROOT / "examples" / "targets.toml")][0] == "staging-countdown"


def test_the_cli_passes_options_through_as_the_plugin_takes_them():
    from conformance.__main__ import pytest_args
    args = pytest_args(["--insecure", "https://h/3", "--repeat", "3", "--baseline", "b.json", "--target", "all",
                        "--targets-file=t.toml", "--strict", "http://h/5", "--junit-xml", "j.xml"])
    tail = args[args.index("--insecure"):]
    assert tail == ["--insecure", "--target-url", "https://h/3", "--repeat", "3", "--baseline", "b.json",
                    "--target", "all", "--targets-file=t.toml", "--strict", "--target-url", "http://h/5",
                    "--junit-xml", "j.xml"]
