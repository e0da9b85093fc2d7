"""The main job as the README states it, end to end, as a user runs it: ``python -m pytest`` from
the repository's root (the built-in reference targets at the seed's own timing, the browser
check included), and one ``python -m conformance URL`` run on a built-in stream.

What a user sees first is asserted: the exit code with exactly the seed's four MUST faults,
``report.html`` with each target's matrix, arrival timelines and the browser's screenshots,
``results.json`` valid against its schema with every (target, check) pair, and JUnit written.
In CI (``CI`` set) Chromium must be there: the browser check is part of the main job.
"""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance import schema
from conformance.checks.catalogue import CHECKS, load_all
from conformance.targets import launcher
from tests.test_browser import require_browser

ROOT = Path(__file__).resolve().parent.parent
load_all()
# The seed's faults (shared/seed, docs/design.md): chunked sent twice, which h11 rejects; the body
# sent to HEAD; Transfer-Encoding in a response to HTTP/1.0.
SEED_MUST_FAULTS = {("webpy-seed", "framing.strict-parse"), ("webpy-seed", "framing.chunked-once"),
                    ("webpy-seed", "framing.head-no-body"), ("webpy-seed", "framing.http10-no-te")}


def _check_report_dir(report: Path, targets: list[str]) -> tuple[dict, str]:
    doc = json.loads((report / "results.json").read_text())
    schema.validate(doc, "results")
    pairs = {(r["target"], r["check"]) for r in doc["results"]}
    assert pairs == {(t, c) for t in targets for c in CHECKS}, "every (target, check) pair has a result"
    assert not [r for r in doc["results"] if r.get("crash")]
    html = (report / "report.html").read_text()
    for t in targets:
        assert f">{t}<" in html or f"{t}</" in html
    assert html.count("<svg") >= 2 * len(targets), "arrival timelines"
    return doc, html


@pytest.mark.slow
def test_the_main_job_as_the_readme_states_it(tmp_path):
    require_browser()
    report, junit = tmp_path / "latest", tmp_path / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--report-dir", str(report),
                           "--junitxml", str(junit)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert "was not written" not in out, out[-3000:]
    assert proc.returncode == 1, out[-4000:]
    doc, html = _check_report_dir(report, ["webpy-seed", "webpy"])
    failing = {(r["target"], r["check"]) for r in doc["results"] if r["verdict"] in ("fail", "error")}
    assert failing == SEED_MUST_FAULTS, out[-4000:]
    assert doc["exit_code"] == 1
    browser = {r["target"]: r for r in doc["results"] if r["check"] == "browser.progressive-render"}
    assert {t: r["verdict"] for t, r in browser.items()} == {"webpy-seed": "pass", "webpy": "pass"}
    assert html.count('src="data:image/png;base64,') >= 2, "the browser's screenshots"
    assert "countdown page:" in html and "holder page:" in html
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 2 * len(CHECKS)
    assert sum(c.find("failure") is not None for c in cases) == len(SEED_MUST_FAULTS)


@pytest.mark.slow
def test_a_url_run_on_a_builtin_stream(tmp_path):
    require_browser()
    server = launcher.start("control-sse-tokens", ["{python}", "-m", "conformance.targets.streams", "sse-tokens", "{address}"], 1.0)
    try:
        proc = subprocess.run([sys.executable, "-m", "conformance", server.base_url + "/",
                               "--report-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    out = proc.stdout + proc.stderr
    assert "was not written" not in out and "Traceback" not in out, out[-3000:]
    target = server.base_url + "/"
    doc, html = _check_report_dir(tmp_path, [target])
    assert proc.returncode == doc["exit_code"] == 0, out[-4000:]
    assert doc["targets"][0]["profile"] == "sse"
    browser = next(r for r in doc["results"] if r["check"] == "browser.progressive-render")
    assert browser["verdict"] == "pass", browser["observed"]
    assert "stream page:" in html and "EventSource" in html
