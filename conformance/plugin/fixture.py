"""``stream_check``: the suite from a user's own tests (docs/guide.md, "Test your own app").

    def test_events_stream(stream_check):
        stream_check("myapp.asgi:app", path="/events").assert_ok()

``stream_check(url_or_app, ...)`` runs the catalogue (or the checks named) against a URL, or
against a WSGI/ASGI app (``MODULE:ATTR``) that it starts under each server it fits (or those
named), as one ``conformance.engine.run.Run``: no pytest inside pytest. It returns the findings as data
(``StreamCheck``), and writes ``results.json``, ``report.html`` and the recordings under the
test's ``tmp_path``. ``assert_ok(level="MUST")`` fails the test with the failing findings, each
with the requirement it quotes.
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from conformance.analysis.target import build_target
from conformance.checks import catalogue
from conformance.checks.catalogue import describe
from conformance.engine import apps
from conformance.engine.apps import AppError
from conformance.engine.run import Options, Run
from conformance.report import write_html

LEVELS = ("MUST", "SHOULD", "INFO")


@dataclass(frozen=True)
class StreamFinding:
    """One check's verdict on one target, as ``results.json`` has it."""
    target: str
    check: str
    level: str
    verdict: str
    observed: str
    expected: str
    requirement: str
    spec: str
    metrics: dict = field(default_factory=dict, compare=False)
    recording: Path | None = None
    cause: str | None = None   # the diagnosis that explains it (its cause and fix), when one does

    @property
    def ok(self) -> bool:
        return self.verdict not in ("fail", "warn", "error")

    def describe(self) -> str:
        text = describe(dict(target=self.target, check=self.check, level=self.level, verdict=self.verdict,
                             spec=self.spec, requirement=self.requirement, expected=self.expected,
                             observed=self.observed))
        if self.cause:
            text += f"\n  cause: {self.cause}"
        if self.recording:
            text += f"\n  recording: {self.recording}"
        return text


@dataclass
class StreamCheck:
    """What ``stream_check`` found: ``findings`` (every check × target), where it wrote them."""
    subject: str
    findings: list[StreamFinding]
    targets: dict[str, dict]          # target id -> its entry in results.json (url, server, diagnosis, …)
    report_dir: Path
    exit_code: int

    @property
    def results_path(self) -> Path:
        return self.report_dir / "results.json"

    def __iter__(self):
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def verdict(self, check: str, target: str | None = None) -> str:
        """The verdict of one check (on the one target, or the target named)."""
        found = [f for f in self.findings if f.check == check and (target is None or f.target == target)]
        if not found:
            raise KeyError(f"no finding for {check}" + (f" on {target}" if target else "")
                           + f"; targets: {', '.join(self.targets)}")
        if len(found) > 1:
            raise KeyError(f"{check} was judged on {len(found)} targets; name one: {', '.join(f.target for f in found)}")
        return found[0].verdict

    def verdicts(self, check: str) -> dict[str, str]:
        """Target id -> verdict of one check."""
        return {f.target: f.verdict for f in self.findings if f.check == check}

    def failing(self, level: str = "MUST") -> list[StreamFinding]:
        """Findings not met at ``level`` or above: fail and error at MUST; warn too at SHOULD."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        levels = LEVELS[:LEVELS.index(level) + 1]
        return [f for f in self.findings if f.level in levels and f.verdict in ("fail", "error", "warn")
                and (f.verdict != "warn" or level != "MUST")]

    def assert_ok(self, level: str = "MUST") -> "StreamCheck":
        bad = self.failing(level)
        if bad:
            head = (f"{self.subject}: {len(bad)} finding{'s' * (len(bad) > 1)} at {level} level not met "
                    f"(report: {self.report_dir / 'report.html'})")
            raise AssertionError("\n\n".join([head] + [f.describe() for f in bad]))
        return self


def run_stream_check(url_or_app: str, report_dir: Path, path: str | list[str] | None = None, *,
                     server: str | list[str] | None = None, behind: str | list[str] | None = None,
                     checks: list[str] | None = None, skip_checks: list[str] | None = None,
                     profile: str | None = None, interval: float | None = None, watch: float | None = None,
                     headers: dict | list | None = None, concurrent_streams: int | None = None,
                     large_url: str | None = None,
                     method: str | None = None, body: bytes | str | None = None, json=None,
                     max_requests: int | None = None,
                     strict: bool = False, timeout: float | None = None, insecure: bool = False) -> StreamCheck:
    catalogue.load_all()
    bad = catalogue.unknown(list(checks or []) + list(skip_checks or []))
    if bad:
        raise ValueError(f"unknown check ID {', '.join(bad)}")
    ids = catalogue.select(list(checks or []), list(skip_checks or []))
    as_list = (lambda v: [] if v is None else [v] if isinstance(v, str) else list(v))
    header_list = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    # the interval only when given (build_target fills the countdown's own); a bad value is a
    # TargetError (a ValueError) naming the argument
    common = dict(profile=profile, headers=header_list, watch=watch, insecure=insecure, large_url=large_url,
                  concurrent_streams=concurrent_streams, **({} if interval is None else {"interval": interval}))
    where = (lambda name: f"stream_check({name}=...):")
    if "://" in url_or_app:
        if server or behind:
            raise ValueError("server= and behind= are for an app (MODULE:ATTR), not a URL")
        url = url_or_app.rstrip("/") + path if isinstance(path, str) else url_or_app
        targets = [build_target(url, url, where, **common)]
    else:
        targets = apps.build_targets([url_or_app], as_list(path) or ["/"], as_list(server), as_list(behind),
                                     where=where, **common)
    if method is not None or body is not None or json is not None or max_requests is not None:
        _request(targets, method, body, json, max_requests)
    run = Run(targets, Options(report_dir=report_dir, strict=strict, timeout=timeout))
    scenarios = sorted({catalogue.CHECKS[c].scenario for c in ids})
    for trun in run.targets:
        trun.scenarios = list(scenarios)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        run.ensure_started()
        for trun in run.targets:
            for cid in ids:
                trun.run_check(catalogue.CHECKS[cid])
    finally:
        run.stop()
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)   # Run.ensure_started set its own
    run.write_results()
    try:
        write_html(report_dir)
    except Exception:  # noqa: BLE001 - the findings are what the test needs; the page is extra
        pass
    paths = as_list(path)
    return _result(f"stream_check({url_or_app!r}{', path=' + repr(path) if paths else ''})", run)


def _request(targets, method, body, json_value, max_requests) -> None:
    """The request of every target (``conformance.request``): ``method``; ``body`` (bytes or
    text) or ``json`` (a value sent as JSON, or JSON text, with Content-Type and Accept:
    application/json); a body without a method is a POST. ``max_requests``: the budget."""
    import json as _json

    from conformance.wire.request import check_method
    if body is not None and json_value is not None:
        raise ValueError("give body= or json=, not both")
    extra = []
    if json_value is not None:
        body = json_value if isinstance(json_value, (str, bytes)) else _json.dumps(json_value)
        extra = [("Content-Type", "application/json"), ("Accept", "application/json")]
    data = body.encode("utf-8") if isinstance(body, str) else body
    m = check_method(method) if method is not None else ("POST" if data is not None else "GET")
    for i, t in enumerate(targets):
        names = {k.lower() for k, _ in t.headers}
        targets[i] = replace(t, method=m, body=data,
                             headers=list(t.headers) + [(k, v) for k, v in extra if k.lower() not in names],
                             **({} if max_requests is None else {"max_requests": max_requests}))


def _result(subject: str, run) -> StreamCheck:
    doc = run.results_document()
    targets = {t["id"]: t for t in doc["targets"]}
    findings = []
    for r in doc["results"]:
        cause = None
        if "cause" in r:
            causes = targets.get(r["target"], {}).get("diagnosis", [])
            if r["cause"] < len(causes):
                c = causes[r["cause"]]
                cause = f"{c['cause']} (hop: {c['hop']}); fix: {c['fix']}"
        findings.append(StreamFinding(r["target"], r["check"], r["level"], r["verdict"], r["observed"],
                                      r.get("expected") or "", r["requirement"], r["spec"], r.get("metrics") or {},
                                      run.options.report_dir / r["recording"] if r.get("recording") else None, cause))
    return StreamCheck(subject, findings, targets, run.options.report_dir, doc["exit_code"])


@pytest.fixture
def stream_check(tmp_path):
    """``stream_check(url_or_app, path=..., server=..., behind=..., checks=..., profile=...,
    interval=..., watch=..., headers=..., concurrent_streams=..., method=..., body=..., json=...,
    max_requests=..., strict=...)`` -> ``StreamCheck``.
    Each call writes its report under ``tmp_path`` (``stream-check-1/``, …)."""
    calls = [0]

    def check(url_or_app: str, path: str | list[str] | None = None, **kw) -> StreamCheck:
        calls[0] += 1
        try:
            return run_stream_check(url_or_app, tmp_path / f"stream-check-{calls[0]}", path, **kw)
        except Exception as e:
            if isinstance(e, AppError):
                pytest.fail(str(e), pytrace=False)
            raise
    return check
