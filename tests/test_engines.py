"""The engine matrix: Chromium, WebKit (WebKitGTK over WebKitWebDriver) and Firefox (Marionette)
on the engine controls (targets/engine_controls.py), each verdict asserted per engine, as one run
of the CLI shows them in results.json, JUnit and report.html; the engines' processes end with
the run (and at once on an abort); a missing engine is a skip with its hint; the diagnosis names
the engine as the hop.

What each engine really does on these controls (measured; see conformance/engines.py):
WebKitGTK 2.50 holds a 400-byte page (10 pieces of 40 bytes) in full until it ends (it parses a
partial document only after ~512 bytes), parses but does not paint a page padded with a 1 KiB
HTML comment, and shows a page padded with 1 KiB of off-screen text piece by piece; Chromium and
Firefox show all three piece by piece. EventSource and fetch() stream in all three.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.scenarios import engines
from conformance.scenarios.browser import BrowserRecording
from conformance.scenarios.base import SCENARIOS, Context
from conformance.analysis.target import Target

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("browser.progressive-render", "browser.progressive-render.webkit", "browser.progressive-render.firefox")
# (target, check) -> the verdict (SHOULD: a fail is a warn without --strict)
EXPECTED = {
    "control-engines-html": ("pass", "warn", "pass"),
    "control-engines-html-padded": ("pass", "pass", "pass"),
    "control-engines-html-comment": ("pass", "warn", "pass"),
    "control-engines-sse": ("pass", "pass", "pass"),
    "control-engines-sse-held": ("warn", "warn", "warn"),
    "control-engines-ndjson": ("pass", "pass", "pass"),
}
# WebKit's and Firefox's page of the target's origin is the target's own 404 (Chromium's is made by
# the suite): JSON, as an API answers (Firefox's JSON viewer is off: the script runs), or a page
# whose Content-Security-Policy forbids the script or its request (a skip that says so, at once).
# Recorded in a run of their own: beside the six controls above, eight targets' pages at once made
# Chromium's countdown page late on this 2-core machine.
ORIGIN_EXPECTED = {
    "control-engines-sse-json-404": ("pass", "pass"),
    "control-engines-sse-csp-404": ("skip", "skip"),
}


def require_engines():
    why = [e.unavailable() for e in engines.ENGINES.values()]
    from conformance.scenarios import browser
    why.append(browser.unavailable())
    why = [w for w in why if w]
    if why and os.environ.get("CI"):
        pytest.fail(f"CI must run every engine for real, but {'; '.join(why)}")
    if why:
        pytest.skip("; ".join(why))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_engines()
    out = tmp_path_factory.mktemp("engines")
    argv = [sys.executable, "-m", "conformance"]
    for t in EXPECTED:
        argv += ["--target", t]
    argv += ["--check", "browser.", "--check", "delivery.progressive", "--report-dir", str(out)]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    results = json.loads((out / "results.json").read_text())
    return p, out, results


@pytest.mark.parametrize("target", list(EXPECTED))
def test_each_engine_verdict(run, target):
    p, out, results = run
    got = {r["check"]: r for r in results["results"] if r["target"] == target}
    verdicts = tuple(got[c]["verdict"] for c in CHECKS)
    assert verdicts == EXPECTED[target], (target, [(c, got[c]["observed"][:600]) for c in CHECKS])
    for c in CHECKS[1:]:
        assert got[c]["metrics"]["engine"] in ("WebKitGTK", "Firefox")


@pytest.fixture(scope="module")
def origin_run(tmp_path_factory):
    require_engines()
    out = tmp_path_factory.mktemp("engines-origin")
    argv = [sys.executable, "-m", "conformance", *(a for t in ORIGIN_EXPECTED for a in ("--target", t)),
            "--check", CHECKS[1], "--check", CHECKS[2], "--report-dir", str(out)]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return p, json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("target", list(ORIGIN_EXPECTED))
def test_the_page_of_the_origin_is_the_targets_own_404(origin_run, target):
    p, results = origin_run
    got = {r["check"]: r for r in results["results"] if r["target"] == target}
    verdicts = tuple(got[c]["verdict"] for c in CHECKS[1:])
    assert verdicts == ORIGIN_EXPECTED[target], (target, [(c, got[c]["observed"][:600]) for c in CHECKS[1:]])
    for c in CHECKS[1:]:
        if got[c]["verdict"] == "skip":   # the policy named, not "the page's script returned nothing"
            assert "Content-Security-Policy: default-src 'none'" in got[c]["observed"], got[c]["observed"]
        else:
            assert got[c]["metrics"]["engine"] in ("WebKitGTK", "Firefox")


def test_webkit_holds_are_explained_and_named_as_the_hop(run):
    p, out, results = run
    by = {(r["target"], r["check"]): r for r in results["results"]}
    small = by[("control-engines-html", "browser.progressive-render.webkit")]
    assert "512 bytes" in small["observed"] and "bugs.webkit.org" in small["observed"], small["observed"]
    assert small["metrics"]["engine_hold"] is True
    comment = by[("control-engines-html-comment", "browser.progressive-render.webkit")]
    # every paint held to the end: said either way, as the observer came in time or late (a busy machine)
    assert ("painted nothing until" in comment["observed"]
            or "painted (requestAnimationFrame) in 1 burst" in comment["observed"]), comment["observed"]
    assert comment["metrics"]["largest_dom_burst"] <= comment["metrics"]["allowed_per_burst"]   # parsed on time
    diag = {t["id"]: t.get("diagnosis") or [] for t in results["targets"]}
    for t in ("control-engines-html", "control-engines-html-comment"):
        assert [c["kind"] for c in diag[t]] == ["engine"], diag[t]
        cause = diag[t][0]
        assert cause["hop"].startswith("WebKitGTK") and cause["certainty"] == "certain"
        assert "1 KiB" in cause["fix"] and cause["explains"] == ["browser.progressive-render.webkit"]
    # a stream held by the server is one cause (the server's), explaining every engine's finding
    held = diag["control-engines-sse-held"]
    assert len(held) == 1 and set(CHECKS) <= set(held[0]["explains"]), held


def test_every_engine_shows_in_junit_and_the_report(run):
    p, out, results = run
    junit = (out / "junit.xml").read_text() if (out / "junit.xml").exists() else ""
    html = (out / "report.html").read_text()
    for c in CHECKS[1:]:
        assert c in html
        if junit:
            assert c in junit
    assert "WebKitGTK" in html and "Firefox" in html
    # the client matrix has a row per engine beside the raw recorder's times
    assert html.count("the page, parsed (DOM insertion)") >= 3 or "WebKitGTK" in html


def _zombie(pid: int) -> bool:
    """Whether the process has ended and waits only to be reaped (state Z in /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True   # gone since pgrep saw it


def test_no_engine_process_outlives_the_run(run):
    """The CLI's process ended, and with it every engine: no MiniBrowser, WebKitWebDriver, Xvfb or
    Firefox of that run is left (they ran in the CLI's child process groups)."""
    p, out, results = run
    left = subprocess.run(["pgrep", "-f", "conformance-firefox-|WebKitWebDriver|MiniBrowser"],
                          capture_output=True, text=True).stdout.split()
    # a zombie (ended, not yet reaped by PID 1, which here is the VM's init) runs nothing
    mine = [pid for pid in left if _parent_is_gone_or_ours(int(pid)) and not _zombie(int(pid))]
    assert mine == [], subprocess.run(["ps", "-o", "pid,ppid,args", "-p", ",".join(mine)], capture_output=True,
                                      text=True).stdout


def _parent_is_gone_or_ours(pid: int) -> bool:
    """A leftover of a run of ours: orphaned (adopted by init) — other sessions' live engines have
    their own live parents."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(stat[1]) == 1


def _live_processes() -> list[tuple[int, int]]:
    """(pid, process group) of every process that is not a zombie."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z":
            out.append((int(d.name), int(stat[2])))
    return out


def test_abort_kills_every_engine_process_at_once():
    require_engines()
    try:
        engines.prestart()
        groups = {n: e.pids() for n, e in engines.ENGINES.items()}
        assert all(groups.values()), groups
        engines.abort_all()
        pgids = {g for gs in groups.values() for g in gs}
        assert [p for p in _live_processes() if p[1] in pgids] == []
        rec = engines.run_engine(engines.ENGINES["webkit"], Context(
            Target("t", "http://127.0.0.1:9/sse", "sse", 0.3), "http://127.0.0.1:9/sse", 1.0, 5.0))
        assert rec.skip_reason and "interrupted" in rec.skip_reason   # none starts again after an abort
    finally:
        engines.reset_abort()


def test_a_missing_engine_is_a_skip_with_its_hint(monkeypatch):
    monkeypatch.setenv(engines.FIREFOX_ENV, "/nonexistent/firefox")
    monkeypatch.setenv(engines.WEBKIT_ENV, "/nonexistent/WebKitWebDriver")
    from conformance.checks.catalogue import CHECKS as ALL
    target = Target("t", "http://127.0.0.1:9/sse", "sse", 0.3)
    for name, check in (("firefox", "browser.progressive-render.firefox"),
                        ("webkit", "browser.progressive-render.webkit")):
        rec = SCENARIOS[engines.ENGINES[name].scenario].run(Context(target, target.url, 1.0, 5.0))
        finding = ALL[check].judge(rec, target)
        assert finding.verdict == "skip" and "apt-get install" in finding.observed, finding.observed


def test_engine_hold_in_the_diagnosis_without_a_browser():
    from conformance.engine.diagnosis import diagnose
    results = [{"check": "delivery.progressive", "verdict": "pass", "observed": "on time", "metrics": {}},
               {"check": "browser.progressive-render.webkit", "verdict": "warn", "observed": "held by WebKit",
                "metrics": {"engine": "WebKitGTK", "engine_hold": True, "engine_cause": "WebKit waits for 512 bytes",
                            "engine_fix": "pad 1 KiB", "engine_source": "https://bugs.webkit.org/show_bug.cgi?id=252413"}}]
    causes = diagnose(results)
    assert [(c.kind, c.certainty, c.fix) for c in causes] == [("engine", "certain", "pad 1 KiB")]
    assert causes[0].hop.startswith("WebKitGTK") and results[1]["cause"] == 0


def test_a_page_record_round_trips_with_its_engine_scenario():
    rec = BrowserRecording("browser-webkit", "http://x/8", browser="WebKitGTK 2.50.6", count=8)
    d = rec.to_dict()
    assert BrowserRecording.from_dict(d).scenario == "browser-webkit"



def _span(rec) -> tuple[float, float]:
    """A recording's time span: from its navigation or script call to its end (wall clock s)."""
    return rec["started_at"], rec["started_at"] + rec["duration_s"]


def test_the_targets_engine_sessions_overlap_in_the_run(run):
    """The run's six targets share each engine at the same time (one process, a window each):
    in WebKit and in Firefox, some instant is inside the time spans of at least two of their
    recordings (which ones depends on the run's schedule), and every verdict is still the one
    the control has alone (test_each_engine_verdict)."""
    p, out, results = run
    for engine in ("webkit", "firefox"):
        spans = {}
        for t in EXPECTED:
            rec = json.loads((out / "recordings" / f"{t}-browser-{engine}.json").read_text())
            assert rec["skip_reason"] is None and rec["started_at"] and rec["duration_s"], (engine, t, rec["skip_reason"])
            spans[t] = _span(rec)
        starts = sorted(s for s, _ in spans.values())
        assert max(sum(1 for s, e in spans.values() if s <= t < e) for t in starts) >= 2, (engine, spans)


# (control, path, profile, interval) -> the strict verdict per engine, each as for the control alone
SIDE_BY_SIDE = {
    ("control-engines-sse", "/sse", "sse", 0.3): "pass",
    ("control-engines-sse-held", "/sse", "sse", 0.3): "fail",
}


def test_two_targets_sessions_run_at_once_in_each_engine():
    """Two targets' sessions started together run at the same time in each engine, whatever the
    run's schedule: their time spans overlap, each engine had both in progress at once, and each
    verdict is the one the control has alone (strict: the server's held stream fails)."""
    require_engines()
    from concurrent.futures import ThreadPoolExecutor
    from conformance.checks.catalogue import CHECKS as ALL
    from conformance.targets import launcher
    from conformance.targets.registry import BUILTINS
    servers = {}
    spans: dict[str, list] = {}
    try:
        for name, *_ in SIDE_BY_SIDE:
            b = BUILTINS[name]
            servers[name] = launcher.start(b.name, list(b.argv), 1.0)
        engines.prestart()
        for e in engines.ENGINES.values():
            e.most_at_once = 0
        jobs = []
        with ThreadPoolExecutor(2 * len(SIDE_BY_SIDE)) as pool:
            for (name, path, profile, interval), expect in SIDE_BY_SIDE.items():
                url = f"http://{servers[name].host}:{servers[name].port}{path}"
                target = Target(name, url, profile, interval)
                for engine in ("webkit", "firefox"):
                    job = pool.submit(engines.run_engine, engines.ENGINES[engine], Context(target, url, 5.0, 60.0))
                    jobs.append((engine, target, expect, job))
        for engine, target, expect, job in jobs:
            rec = job.result()
            assert rec.skip_reason is None and rec.error is None, (engine, target.id, rec.skip_reason, rec.error)
            finding = ALL[f"browser.progressive-render.{engine}"].judge(rec, target, strict=True)
            assert finding.verdict == expect, (engine, target.id, finding.observed)
            spans.setdefault(engine, []).append((rec.started_at, rec.started_at + rec.duration_s))
    finally:
        for s in servers.values():
            s.stop()
    for engine, (a, b) in spans.items():
        assert max(a[0], b[0]) < min(a[1], b[1]), (engine, a, b)
        assert engines.ENGINES[engine].most_at_once == 2, engine
