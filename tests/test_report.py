"""The reports people read: report.html, the results.json schema, JUnit names, and escaping.

The suite runs in a subprocess, as users run it (``python -m pytest conformance ...``), against
a few built-in targets at a 20 ms producer interval, and once against a hostile server
(``targets/xss_control.py``) whose status reason, headers, trailer and body carry markup. No
assertion here depends on a timing verdict: only on what was written and how it is shown.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance import schema
from conformance.wire.recording import Piece, Read, Recording
from conformance.report import write_html
from conformance.report.text import escape_bytes, visible
from conformance.targets import launcher

ROOT = Path(__file__).resolve().parent.parent
TIME_SCALE = "0.02"
BUILTIN_TARGETS = ["control-stream", "control-buffered", "webpy-seed"]


def run_suite(report_dir: Path, junit: Path, *target_args: str) -> subprocess.CompletedProcess:
    # The JUnit naming hooks are named with -p so this test does not depend on how the plugin
    # registers them; registering a plugin twice by the same name is a no-op.
    # The browser check (headless Chromium, seconds per target) is left out to keep this fast;
    # the report shows its recordings like any other non-wire recording (see the broken-dir test).
    cmd = [sys.executable, "-m", "pytest", "conformance", "--time-scale", TIME_SCALE, *target_args,
           "--skip-check", "browser.",
           "--report-dir", str(report_dir), "-p", "no:cacheprovider", "-p", "conformance.plugin.junit_hooks",
           "--junitxml", str(junit), "-q", "--timeout", "5"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


class Page(HTMLParser):
    """Every start tag with its attributes, every text node, and which figures hold an <svg>."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.figures: list[dict] = []
        self._figure: dict | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "figure":
            self._figure = {"class": a.get("class", ""), "id": a.get("id"), "svg": 0}
            self.figures.append(self._figure)
        elif tag == "svg" and self._figure is not None:
            self._figure["svg"] += 1

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]


@pytest.fixture(scope="module")
def builtin_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("builtin")
    report_dir, junit = base / "report", base / "junit.xml"
    args = [a for name in BUILTIN_TARGETS for a in ("--target", name)]
    run_suite(report_dir, junit, *args)
    return report_dir, junit


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    report_dir, junit = base / "report", base / "junit.xml"
    server = launcher.start("xss", ["{python}", "-m", "conformance.targets.xss_control", "{address}"], float(TIME_SCALE))
    try:
        run_suite(report_dir, junit, "--target-url", server.base_url + "/4", "--interval", TIME_SCALE)
    finally:
        server.stop()
    return report_dir, junit


def results(report_dir: Path) -> dict:
    return json.loads((report_dir / "results.json").read_text())


# --- results.json and recordings against the shipped schemas ----------------------------------

def test_results_json_matches_the_schema(builtin_run):
    report_dir, _ = builtin_run
    doc = results(report_dir)
    schema.validate(doc, "results")
    assert {t["id"] for t in doc["targets"]} == set(BUILTIN_TARGETS)
    recordings = {r["recording"] for r in doc["results"] if r["recording"]}
    assert recordings
    for rel in recordings:
        schema.validate(json.loads((report_dir / rel).read_text()), "recording")


def test_schema_rejects_what_run_py_never_writes():
    import jsonschema

    good = {"schema": 1, "suite": {"name": "s", "version": "1"}, "started_at": "2026-01-01T00:00:00Z",
            "duration_s": 1.0, "exit_code": 0, "targets": [],
            "results": [{"target": "t", "check": "framing.complete", "level": "MUST", "verdict": "pass",
                         "spec": "RFC 9112 §8", "requirement": "r", "title": "t", "expected": "", "observed": "o",
                         "metrics": {"x_s": 0.1}, "recording": "recordings/t-get.json"}]}
    schema.validate(good)
    for path, value in ((("results", 0, "verdict"), "passed"), (("results", 0, "level"), "MAY"),
                        (("schema",), 2), (("results", 0, "recording"), "../etc/passwd")):
        bad = json.loads(json.dumps(good))
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            schema.validate(bad)
    assert schema.load("results")["$schema"].endswith("2020-12/schema")


# --- report.html ---------------------------------------------------------------------------------

def test_report_has_the_matrix_and_a_timeline_per_recording(builtin_run):
    report_dir, _ = builtin_run
    doc = results(report_dir)
    text = (report_dir / "report.html").read_text()
    page = Page(text)

    checks = list(dict.fromkeys(r["check"] for r in doc["results"]))
    assert len(page.find("table", "matrix")) == 1
    cells = page.find("td", "cell")
    assert len(cells) == len(doc["results"]) == len(checks) * len(BUILTIN_TARGETS)
    assert Counter(c["class"].split()[1] for c in cells) == Counter(f"v-{r['verdict']}" for r in doc["results"])
    matrix_text = text[text.index('<table class="matrix">'):text.index("</table>", text.index('<table class="matrix">'))]
    for cid in checks:
        assert f"<code>{cid}</code>" in matrix_text
    for name in BUILTIN_TARGETS:
        assert f">{name}</a></th>" in matrix_text

    # one figure with an <svg> timeline per (target, recording), and one at-a-glance figure per target
    recordings = {(r["target"], r["recording"]) for r in doc["results"] if r["recording"]}
    figures = {f["id"]: f for f in page.figures if "recording" in f["class"].split()}
    assert len(figures) == len(recordings)
    drawn = 0
    for _, rel in recordings:   # a recording with anything on it (a scenario may not apply: h2 on http)
        rec = json.loads((report_dir / rel).read_text())
        if "reads" in rec:          # a wire exchange (a browser's recording is shown as its fields)
            drawn += bool(rec["reads"] or rec["pieces"] or rec["head_t"] is not None)
    assert sum(f["svg"] for f in figures.values()) == drawn and all(f["svg"] <= 1 for f in figures.values())
    get_figures = [f for f in figures.values() if f["svg"]]
    assert len(get_figures) >= 3 * len(BUILTIN_TARGETS)      # get, get-http10 and head at least
    minis = [f for f in page.figures if "mini" in f["class"].split()]
    assert len(minis) == len(BUILTIN_TARGETS) and all(f["svg"] == 1 for f in minis)

    # every check links its recording JSON, and the links resolve inside the report dir
    hrefs = [a["href"] for a in page.find("a") if a.get("href")]
    for rel in {r for _, r in recordings}:
        assert rel in hrefs and (report_dir / rel).is_file()

    # self-contained: no script, no external resource, every link in-page or to a recording
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    assert all(h.startswith("#") or re.fullmatch(r"recordings/[A-Za-z0-9._-]+\.json", h) for h in hrefs), hrefs
    assert not [a for _, a in page.tags if "src" in a]
    assert "Content-Security-Policy" in text


def test_report_shows_checks_and_wire_logs(builtin_run):
    report_dir, _ = builtin_run
    doc = results(report_dir)
    page = Page((report_dir / "report.html").read_text())
    assert len(page.find("article", "check")) == len(doc["results"])
    assert len(page.find("blockquote")) == len(doc["results"])
    assert len(page.find("details", "wire")) >= len({(r["target"], r["recording"]) for r in doc["results"] if r["recording"]})
    text = "".join(page.text)
    # the seed sends Transfer-Encoding twice: both header lines are listed, in order
    seed_get = json.loads((report_dir / "recordings" / "webpy-seed-get.json").read_text())
    assert [k for k, _ in seed_get["headers"]].count("Transfer-Encoding") == 2
    assert len(page.find("tr", "dup")) >= 2
    # the wire log shows escaped bytes: the status line, and the last-chunk ending the stream
    assert "HTTP/1.1 200 OK\\r\\n" in text
    assert "0\\r\\n\\r\\n" in text
    assert "<h2>Prepare for Launch!</h2><ul><li>Liftoff in 5...</li>" in text   # the decoded body


def test_report_rebuilds_offline_from_the_report_dir_alone(builtin_run, tmp_path):
    report_dir, _ = builtin_run
    copy = tmp_path / "copy"
    shutil.copytree(report_dir, copy)
    (copy / "report.html").unlink()
    assert write_html(copy) == copy / "report.html"
    assert (copy / "report.html").read_text() == (report_dir / "report.html").read_text()


# --- JUnit -----------------------------------------------------------------------------------------

def test_junit_has_one_testcase_per_target_and_check(builtin_run):
    report_dir, junit = builtin_run
    doc = results(report_dir)
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    names = Counter(c.get("name") for c in cases)
    expected_names = {f"{r['check']}[{r['target']}]" for r in doc["results"]}
    assert set(names) == expected_names and all(n == 1 for n in names.values()), names
    by_name = {c.get("name"): c for c in cases}
    for r in doc["results"]:
        case = by_name[f"{r['check']}[{r['target']}]"]
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["check"] == r["check"] and props["target"] == r["target"] and props["verdict"] == r["verdict"]
        failure = case.find("failure")
        assert (failure is not None) == (r["verdict"] in ("fail", "error"))
        if failure is not None:
            message = failure.get("message")
            assert message.startswith(f"{r['verdict'].upper()} {r['check']} [{r['level']}] {r['target']}")
            assert f"observed: {' '.join(r['observed'].split())[:80]}" in message
            assert f"requirement ({r['spec']}): {' '.join(r['requirement'].split())[:80]}" in message
            assert r["requirement"][:80] in failure.text and r["observed"][:80] in failure.text
        if r["verdict"] == "skip":
            assert case.find("skipped") is not None


# --- escaping: a server whose every field is markup ------------------------------------------------

def test_report_shows_hostile_server_data_only_as_text(hostile_run):
    report_dir, junit = hostile_run
    schema.validate(results(report_dir))
    text = (report_dir / "report.html").read_text()
    page = Page(text)

    # no live element or attribute came from the server
    tags = Counter(t for t, _ in page.tags)
    for bad in ("script", "img", "iframe", "object", "embed", "link", "meta-refresh"):
        assert not tags[bad], (bad, tags[bad])
    assert tags["svg"] == sum(f["svg"] for f in page.figures)    # only the report's own timelines
    handlers = [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
    assert not handlers, handlers
    assert not [a for _, a in page.tags if any("javascript:" in (v or "").lower() for v in a.values())]

    # the hostile values are there, as text, escaped in the source
    shown = "".join(page.text)
    for needle in ("<script>alert(2)</script>", 'OK <img src=x onerror="alert(3)">', "<script>alert(5)</script>",
                   "\"'><svg onload=alert(4)>", "<script>alert(7)</script>", "<img src=x onerror=alert(1)>"):
        assert needle in shown, needle
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    assert not re.search(r"<(script|img|iframe)\b", text, re.I)
    # control bytes are made visible, long values are capped
    assert "\\x1b[31m" in shown and "\x1b" not in text
    assert "A" * 1000 not in text and "more characters]" in shown

    # JUnit stays well-formed with the same data
    assert list(ET.parse(junit).getroot().iter("testcase"))


# --- bounded output and the text helpers ----------------------------------------------------------

def test_a_huge_recording_stays_bounded(tmp_path):
    n = 50_000
    reads = [Read(0.001 + i * 1e-5, 1000) for i in range(n)]
    pieces = [Piece(r.t, i * 1000, 1000, True, True) for i, r in enumerate(reads)]
    rec = Recording("get", "http://127.0.0.1:1/bytes", status=200, reason="OK", head_t=0.001, framing="chunked",
                    headers=[["X-Many", "v"]] * 1000, pieces=pieces, reads=reads, body_bytes=n * 1000,
                    raw_bytes=n * 1000, raw_kept="x" * 100_000, end="complete", end_t=reads[-1].t)
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "big-get.json").write_text(rec.to_json())
    doc = {"schema": 1, "suite": {"name": "s", "version": "1"}, "started_at": "2026-01-01T00:00:00Z",
           "duration_s": 1, "exit_code": 0,
           "targets": [{"id": "big", "url": rec.url, "profile": "bytes", "interval_s": 1.0, "server": None}],
           "results": [{"target": "big", "check": "delivery.progressive", "level": "MUST", "verdict": "fail",
                        "spec": "suite rule", "requirement": "r", "title": "t", "expected": "", "observed": "o",
                        "metrics": {}, "recording": "recordings/big-get.json"}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    started = time.monotonic()
    text = write_html(tmp_path).read_text()
    assert time.monotonic() - started < 30
    page = Page(text)
    assert len(page.find("td", "bytes")) == 220                  # the first 200 reads and the last 20
    assert len(page.find("tr", "omitted")) == 1 and "49780 reads not shown" in text
    assert len(text) < 2_000_000
    # marks are merged per pixel column: the full timeline is 1126 columns wide, the compact one 616
    assert len(page.find("rect", "piece")) <= 1126 + 616 and len(page.find("rect", "read")) <= 1126


def test_a_broken_report_dir_still_renders(tmp_path):
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "t-get.json").write_text("{not json")
    (tmp_path / "recordings" / "t-browser.json").write_text(json.dumps(
        {"scenario": "browser", "url": "http://x/5", "browser": "<script>b</script>", "paint": {"t": [0.1, 0.2]}}))
    doc = {"schema": 1, "suite": {"name": "s", "version": "1"}, "started_at": "x", "duration_s": 0,
           "targets": [{"id": "<b>t</b>", "url": None, "profile": "countdown", "interval_s": 1.0, "error": "refused"}],
           "results": [
               {"target": "<b>t</b>", "check": "framing.complete", "level": "MUST", "verdict": "error", "spec": "",
                "requirement": "r", "observed": "<script>x</script>", "metrics": {}, "recording": "recordings/t-get.json"},
               {"target": "<b>t</b>", "check": "framing.strict-parse", "level": "MUST", "verdict": "error", "spec": "",
                "requirement": "r", "observed": "o", "metrics": {}, "recording": "recordings/../../../etc/passwd"},
               {"target": "<b>t</b>", "check": "browser.progressive-render", "level": "SHOULD", "verdict": "warn",
                "spec": "", "requirement": "r", "observed": "o", "metrics": {}, "recording": "recordings/t-browser.json"}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    text = write_html(tmp_path).read_text()
    assert "could not read recordings/t-get.json" in text
    schema.validate(json.loads((tmp_path / "recordings" / "t-browser.json").read_text()), "recording")
    assert "&lt;script&gt;b&lt;/script&gt;" in text and "[0.1, 0.2]" in text   # its fields, as text
    assert "<script" not in text and "<b>t</b>" not in text and "&lt;b&gt;t&lt;/b&gt;" in text
    assert "etc/passwd" not in text


def test_text_helpers():
    assert escape_bytes("a\r\n\t\\\x00\xff<") == "a\\r\\n\\t\\\\\\x00\\xff<"
    assert visible("ok\u202eevil\x1b") == "ok\\u202eevil\\x1b"
    assert visible("x" * 50, 10).startswith("x" * 10 + "… [40 more")


def _held_sse_report(tmp_path, interval_s):
    """A held SSE stream (17 events read at once at 5.4 s) in a report whose target has the given
    interval (None: a URL run with no schedule given)."""
    body = b"".join(b"data: %d\n\n" % k for k in range(17))
    reads = [Read(5.4, len(body))]
    pieces = [Piece(5.4, 0, len(body), True, True)]
    rec = Recording("get", "http://127.0.0.1:1/events", status=200, reason="OK", head_t=5.4, framing="chunked",
                    headers=[["Content-Type", "text/event-stream"]], pieces=pieces, reads=reads,
                    body_bytes=len(body), raw_bytes=len(body), raw_kept=body.decode(), body_kept=body.decode(),
                    end="complete", end_t=5.41)
    (tmp_path / "recordings").mkdir(parents=True)
    (tmp_path / "recordings" / "t-get.json").write_text(rec.to_json())
    doc = {"schema": 1, "suite": {"name": "s", "version": "1"}, "started_at": "2026-01-01T00:00:00Z",
           "duration_s": 1, "exit_code": 1,
           "targets": [{"id": "t", "url": rec.url, "profile": "sse", "interval_s": interval_s, "server": None}],
           "results": [{"target": "t", "check": "delivery.progressive", "level": "MUST", "verdict": "fail",
                        "spec": "suite rule", "requirement": "r", "title": "t", "expected": "", "observed": "o",
                        "metrics": {}, "recording": "recordings/t-get.json"}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    return write_html(tmp_path).read_text()


def test_no_schedule_is_drawn_where_none_was_given(tmp_path):
    """A URL run with no --interval: the timeline draws the arrivals as they came and says there
    is no schedule (a newcomer's held stream was drawn against a made-up 1 s schedule: "write
    group 16: scheduled at 16.00 s; arrived at 5109 ms (-10.89 s after its write)")."""
    text = _held_sse_report(tmp_path / "free", None)
    assert "scheduled at" not in text and "mid-schedule" not in text
    assert "no producer schedule: none was given (--interval)" in text
    given = _held_sse_report(tmp_path / "given", 0.3)   # with a schedule, it is drawn
    assert "scheduled at" in given
