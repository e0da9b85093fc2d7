"""A check whose judge raises never vanishes: its (check, target) pair ends in results.json,
JUnit, the terminal summary and report.html as ``error`` with the exception and where it was
raised, and the run exits 3 (the suite itself failed), ahead of 1 and 6.

The crash is injected as users could never do it by accident: a check module of this test's own,
named on pytest's command line beside the catalogue, declaring ``framing.injected-crash``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance import schema
from conformance.checks.catalogue import MUST, Check, Finding, crashed
from conformance.engine.gate import majority

ROOT = Path(__file__).resolve().parent.parent

INJECTED = '''
from conformance.checks.catalogue import MUST, check

@check("framing.injected-crash", MUST, "none", "a judge that raises")
def test_injected(rec, target):
    """A judge with a bug in it."""
    return {}["no such key"]
'''


def test_a_crashing_check_is_an_error_and_exit_3(tmp_path):
    module = tmp_path / "test_injected_crash.py"
    module.write_text(INJECTED)
    report, junit = tmp_path / "report", tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", str(module), "--target", "control-stream",
         "--time-scale", "0.02", "--check", "framing.", "--report-dir", str(report), "--junitxml", str(junit),
         "-p", "no:cacheprovider", "-q", "--rootdir", str(ROOT)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out[-3000:]
    doc = json.loads((report / "results.json").read_text())
    schema.validate(doc, "results")
    assert doc["exit_code"] == 3
    mine = [r for r in doc["results"] if r["check"] == "framing.injected-crash"]
    assert len(mine) == 1 and mine[0]["verdict"] == "error"
    crash = mine[0]["crash"]
    assert crash["type"] == "KeyError" and "no such key" in crash["message"]
    assert crash["where"].startswith(f"{module}:7"), crash["where"]
    assert "test_injected_crash.py" in crash["traceback"]
    # the other framing checks still judged the target
    assert {r["check"] for r in doc["results"]} >= {"framing.strict-parse", "framing.chunked-once"}
    assert all(r["verdict"] in ("pass", "skip") for r in doc["results"] if r is not mine[0])
    # the summary says the suite failed, where, and asks for a report
    assert "SUITE FAILURE framing.injected-crash control-stream" in out and "KeyError" in out
    assert "please report it" in out and "exit code: 3" in out
    # JUnit: a failed testcase carrying the traceback
    cases = [c for c in ET.parse(junit).getroot().iter("testcase") if "injected" in c.get("name", "")]
    assert len(cases) == 1 and cases[0].find("failure") is not None
    assert "KeyError" in cases[0].find("failure").get("message", "") + (cases[0].find("failure").text or "")
    # report.html shows it
    html = (report / "report.html").read_text()
    assert "framing.injected-crash" in html and "the suite itself failed" in html


def _raiser(rec, target):
    raise TypeError("passed() got multiple values for keyword argument 'units'")


def test_judge_returns_the_crash_as_data():
    c = Check("delivery.x", MUST, "s", "r", "t", "get", _raiser, needs_success=False)

    class Rec:
        error, status = None, 200
    f = c.judge(Rec(), None)
    assert f.verdict == "error" and f.crash["type"] == "TypeError"
    assert f.crash["where"].startswith(f"{__file__}:{_raiser.__code__.co_firstlineno + 1} (called from "
                                       "conformance/checks/catalogue.py:")
    assert "the suite itself failed" in f.observed


def test_a_crash_is_never_outvoted_by_repeats():
    ok = Finding("pass", "fine")
    try:
        raise ValueError("boom")
    except ValueError as e:
        bad = crashed("delivery.x", e)
    index, f = majority([ok, bad, ok])
    assert index == 1 and f.crash is not None and f.verdict == "error"
