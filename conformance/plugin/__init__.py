"""The ``plugin`` layer, the top floor: pytest hooks, options, the session, xdist, the
``stream_check`` fixture and ``--help``. It may import every layer below (``report``, ``engine``,
``checks``, ``scenarios``, ``analysis``, ``wire``) and ``targets/``; nothing in the package
imports it (``docs/design.md``, "Layers").

This module is the pytest plugin itself (entry point ``conformance.plugin``): options, one test
per (check, target), results and exit codes.

It does nothing unless catalogue checks are collected, so having it installed does not touch
other pytest runs. Targets are started lazily by the first check that runs, and always stopped
in ``pytest_sessionfinish`` (which pytest calls on Ctrl-C too), then ``results.json`` is
written, failed runs included.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from conformance.analysis.target import (
    DEFAULT_WATCH_S,
    MAX_STREAMS,
    PROFILES,
    Target,
    TargetError,
    build_target,
    option,
)
from conformance.checks import catalogue
from conformance.engine import apps, targets_file
from conformance.engine.gate import BaselineError
from conformance.engine.run import EXIT_INTERRUPTED, Options, Run
from conformance.plugin import distributed
from conformance.plugin.fixture import stream_check  # noqa: F401 - the fixture for users' own tests
from conformance.plugin.session import RUN_KEY, collects_checks, say_unwritten, write_reports
from conformance.scenarios.budget import UNSAFE_DEFAULT
from conformance.scenarios.chain import with_reference
from conformance.targets.registry import BUILTINS, DEFAULT_TARGETS
from conformance.wire.recorder import BadURL, parse_url
from conformance.wire.request import Request, RequestError, from_options, parse_curl


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("conformance", "HTTP streaming conformance")
    g.addoption("--target-url", action="append", default=[], metavar="URL", help="a target to check (repeatable); http or https")
    g.addoption("--target", action="append", default=[], metavar="NAME",
                help=f"a built-in target (repeatable); default: {' '.join(DEFAULT_TARGETS)}")
    g.addoption("--targets-file", metavar="PATH", help="a TOML file listing targets (see docs/design.md)")
    g.addoption("--profile", choices=PROFILES, help="how the body is read for delivery checks (default: from the response's Content-Type)")
    g.addoption("--interval", type=float, metavar="SECONDS",
                help="the producer's time between writes (default: inferred from the stream)")
    g.addoption("--watch", type=float, metavar="SECONDS",
                help=f"how long an open stream is recorded before it is judged (default {DEFAULT_WATCH_S:g} s, or the schedule)")
    g.addoption("--count", type=int, metavar="N", help="countdown length when the URL's /N does not say")
    g.addoption("--expect-bursts", type=int, metavar="N", help="minimum separate arrivals expected (bytes profile)")
    g.addoption("--time-scale", type=float, default=1.0, metavar="F", help="scales the built-in targets' sleeps")
    g.addoption("--report-dir", default="reports/latest", metavar="DIR", help="where the results go")
    # --strict (SHOULD-level findings fail the run) is pytest's own flag; the suite reads it too.
    g.addoption("--insecure", action="store_true", help="do not verify TLS certificates")
    g.addoption("--header", action="append", default=[], metavar="'Name: value'", help="extra request header (repeatable; python -m conformance: -H); values are redacted in reports")
    # --timeout (idle timeout per read) is pytest-timeout's option, shared: for check tests it is
    # the read timeout, and each check test gets its own guard as a marker (markers win there).
    g.addoption("--follow-redirects", action="store_true",
                help="follow redirects (at most 5; headers stay with the first origin); else a 3xx is an error")
    g.addoption("--concurrent-streams", type=int, metavar="N",
                help=f"delivery.concurrent's streams at once (default 5, ≤ {MAX_STREAMS})")
    g.addoption("--reference", metavar="ORIGIN_URL",
                help="the origin behind a --target-url chain: delivery.chain judges what the chain adds")
    g.addoption("--large-url", metavar="URL", help="what delivery.large-body downloads (built-ins bring their own)")
    g.addoption("--large-size", type=int, metavar="BYTES", help="the built-ins' large body (default 1 GiB)")
    g.addoption("--baseline", metavar="PATH", help="a previous results.json: fail only on regressions")
    g.addoption("--repeat", type=int, default=1, metavar="N", help="record each scenario N times and judge by majority")
    g.addoption("--check", action="append", default=[], metavar="ID", help="run only these checks (repeatable; a prefix like framing. selects a group)")
    g.addoption("--skip-check", action="append", default=[], metavar="ID", help="leave out these checks (repeatable)")
    # The request (conformance/wire/request.py); -X, -d and -H are python -m conformance's short forms
    g.addoption("--method", metavar="METHOD", help="the request's method, sent by every scenario (default GET; python -m conformance: -X)")
    g.addoption("--data", action="append", default=[], metavar="DATA",
                help="the request body, @file for a file (-d); the method is then POST unless --method")
    g.addoption("--json", action="append", default=[], dest="json_body", metavar="DATA",
                help="a JSON body (@file for a file) with its Content-Type, as curl's --json")
    g.addoption("--curl", metavar="'curl ...'",
                help="the whole request as a curl command line, as pasted (docs/request.md)")
    g.addoption("--max-requests", type=int, metavar="N",
                help=f"at most N requests per target; what does not fit is skip (default: {UNSAFE_DEFAULT} for a method not safe to repeat, RFC 9110 §9.2.1)")
    g.addoption("--plan", action="store_true",
                help="print the requests each scenario would send, and the total; send nothing")
    apps.add_options(g)   # --app, --app-path, --server, --behind (conformance/engine/apps.py)


def _positive(name: str, value, allow_zero: bool = False):
    if value is None:
        return None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise pytest.UsageError(f"{name} must be a positive number, not {value}")
    return value


def _headers(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for h in values:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n") or any(c in value for c in "\r\n"):
            raise pytest.UsageError(f"--header {h!r}: expected 'Name: value'")
        out.append((name.strip(), value.strip()))
    return out


def request_from_options(config: pytest.Config) -> Request:
    """The request every target is asked with (``--curl``, then ``--method``, ``--data``,
    ``--json``, ``--header`` over it); a usage error (exit 4) when it cannot be made."""
    cached = getattr(config, "_conformance_request", None)
    if cached is not None:
        return cached
    opt = config.option
    try:
        base = parse_curl(opt.curl) if getattr(opt, "curl", None) else None
        req = from_options(getattr(opt, "method", None), list(getattr(opt, "data", []) or []),
                           list(getattr(opt, "json_body", []) or []), [], base)
    except RequestError as e:
        raise pytest.UsageError(str(e)) from None
    if getattr(opt, "max_requests", None) is not None and opt.max_requests < 1:
        raise pytest.UsageError(f"--max-requests must be at least 1, not {opt.max_requests}")
    config._conformance_request = req
    return req


def apply_request(t: Target, req: Request, headers_given: list[tuple[str, str]], max_requests: int | None) -> Target:
    """The target with the run's request: its method, body and headers (a header the user gave
    with --header wins over the same one from --curl or --json); a ``dataclasses.replace`` variant."""
    own = t.method != "GET" or t.body is not None   # a targets file's own request stays its own
    changes = {}
    if not own and (req.method != "GET" or req.body is not None):
        changes.update(method=req.method, body=req.body)
    given = {k.lower() for k, _ in t.headers}
    changes["headers"] = [(k, v) for k, v in req.headers if k.lower() not in given] + list(t.headers)
    changes["insecure"] = t.insecure or req.insecure
    if max_requests is not None:
        changes["max_requests"] = max_requests
    return replace(t, **changes)


def _built(id: str, url: str | None, **fields) -> Target:
    """``build_target`` for the command line: a bad value is a usage error naming its option."""
    try:
        return build_target(id, url, option, **fields)
    except TargetError as e:
        raise pytest.UsageError(str(e)) from None


def targets_from_options(config: pytest.Config) -> list[Target]:
    opt = config.option
    req = request_from_options(config)
    interval = _positive("--interval", opt.interval)
    _positive("--time-scale", opt.time_scale)
    _positive("--timeout", opt.timeout)
    watch = _positive("--watch", opt.watch)
    for name, v in (("--count", opt.count), ("--expect-bursts", opt.expect_bursts), ("--repeat", opt.repeat),
                    ("--large-size", opt.large_size)):
        if v is not None and v < 1:
            raise pytest.UsageError(f"{name} must be at least 1, not {v}")
    headers = _headers(opt.header)
    # the options every target built from them shares; the interval only when given (build_target
    # fills the countdown's own)
    given = dict(profile=opt.profile, count=opt.count, **({} if interval is None else {"interval": interval}))
    out: list[Target] = []
    urls = list(opt.target_url) + ([req.url] if req.url else [])
    for url in urls:
        try:
            parse_url(url)
        except BadURL as e:
            raise pytest.UsageError(f"--target-url {e}") from None
        # Without --profile the response decides (Target.profile_of); a countdown named as such
        # keeps the seed's own 1 s pace unless --interval says otherwise (build_target).
        out.append(_built(url, url, **given, expect_bursts=opt.expect_bursts, headers=headers, insecure=opt.insecure,
                          large_url=opt.large_url, watch=watch))
        if opt.reference:   # delivery.chain (conformance/scenarios/chain.py)
            try:
                out[-1] = with_reference(out[-1], opt.reference)
            except BadURL as e:
                raise pytest.UsageError(f"--reference {e}") from None
    if opt.targets_file:
        out += targets_file.load(Path(opt.targets_file), defaults=dict(insecure=opt.insecure, headers=headers, watch=watch))
    out += apps.targets_from_options(opt, **given, expect_bursts=opt.expect_bursts, headers=headers, watch=watch,
                                     large_url=opt.large_url)
    names = list(opt.target)
    if not names and not out:
        names = list(DEFAULT_TARGETS)
    if "all" in names:   # every built-in reference target, not the negative controls
        names = [n for n in names if n != "all"] + [n for n in BUILTINS if not n.startswith("control-") and n not in names]
    for name in names:
        if name not in BUILTINS:
            raise pytest.UsageError(f"--target {name!r} is not a built-in target; known: {', '.join(BUILTINS)}")
        b = BUILTINS[name]
        pace = None if b.interval is None else b.interval * opt.time_scale
        out.append(_built(name, None, profile=b.profile, interval=pace, count=opt.count, headers=headers,
                          insecure=b.insecure or opt.insecure, builtin=name, large_url=opt.large_url, watch=watch))
    if opt.concurrent_streams is not None:
        if not 1 <= opt.concurrent_streams <= MAX_STREAMS:
            raise pytest.UsageError(f"--concurrent-streams must be 1 to {MAX_STREAMS}, not {opt.concurrent_streams}")
        out = [replace(t, concurrent_streams=opt.concurrent_streams) for t in out]
    out = [apply_request(t, req, headers, getattr(opt, "max_requests", None)) for t in out]
    ids = [t.id for t in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise pytest.UsageError(f"target named twice: {', '.join(sorted(dupes))}")
    return out


def pytest_configure(config: pytest.Config) -> None:
    # The browser drivers' own deprecation notices are not the user's concern (nor ours to fix).
    for module in ("mozinfo", "mozrunner", "mozdevice", "mozprofile", "selenium"):
        config.addinivalue_line("filterwarnings", f"ignore::DeprecationWarning:{module}.*")
    # JUnit testcases named by check ID and target, with the finding in the failure message.
    config.pluginmanager.import_plugin("conformance.plugin.junit_hooks")
    # pytest -n N: one target per worker, one results.json from the controller (distributed.py)
    if config.pluginmanager.has_plugin("xdist"):
        config.pluginmanager.import_plugin("conformance.plugin.distributed")
    catalogue.load_all()
    bad = catalogue.unknown(config.option.check + config.option.skip_check)
    if bad:
        raise pytest.UsageError(f"unknown check ID {', '.join(bad)}; known: {', '.join(catalogue.CHECKS)}")
    options = Options(time_scale=config.option.time_scale, timeout=config.option.timeout,
                      strict=config.option.strict, report_dir=Path(config.option.report_dir),
                      large_size=config.option.large_size, repeat=config.option.repeat,
                      baseline=Path(config.option.baseline) if config.option.baseline else None,
                      secret_headers=tuple(n for n, _ in _headers(config.option.header))
                      + tuple(request_from_options(config).secret_names),
                      follow_redirects=config.option.follow_redirects or request_from_options(config).follow_redirects)
    if collects_checks(config):
        _writable_report_dir(options.report_dir)
    try:
        config.stash[RUN_KEY] = run = Run(targets_from_options(config), options)
    except BaselineError as e:
        raise pytest.UsageError(str(e)) from None
    run.on_wait = lambda trun, scenario, waited: _progress_line(config, trun, scenario, waited)


def _progress_line(config: pytest.Config, trun, scenario: str, waited: float) -> None:
    """A line while a check waits on a long recording, so a long stream does not look like a hang."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")   # a test's output is captured: step out of it
    if tr is not None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            tr.write_line(f"... {trun.id}: waiting {waited:.0f} s so far for its {scenario!r} recording "
                          f"(in flight: {trun.progress()})")


def _writable_report_dir(path: Path) -> None:
    """Results that cannot be written are lost: say so before any server starts (only for runs
    of the checks, so a pytest run of other tests never makes the directory)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise pytest.UsageError(f"--report-dir {path}: cannot write there: {e.strerror or e}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_target" in metafunc.fixturenames:
        run = metafunc.config.stash[RUN_KEY]
        metafunc.parametrize("conformance_target", run.targets, ids=[t.id for t in run.targets])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[RUN_KEY]
    chosen = set(catalogue.select(config.option.check, config.option.skip_check))
    keep, drop = [], []
    for item in items:
        check = getattr(getattr(item, "function", None), "check", None)
        if check is None:
            keep.append(item)
        elif check.id in chosen:
            keep.append(item)
            trun = item.callspec.params["conformance_target"]
            item.add_marker(pytest.mark.timeout(trun.guard_timeout()))
            if check.scenario not in trun.scenarios:
                trun.scenarios.append(check.scenario)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    _print_plan(config, run)
    if config.option.plan:   # print the plan, send nothing (exit 0)
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        config._conformance_plan_only = True


def _print_plan(config: pytest.Config, run: Run) -> None:
    """Before the first request: each target's plan (conformance.scenarios.budget), when its request is not
    a plain GET, a budget is set, or --plan asks for it."""
    shown = [t for t in run.targets if t.scenarios and (config.option.plan or t.target.method != "GET"
                                                         or t.plan().budget is not None)]
    if not shown:
        return
    tr = config.pluginmanager.get_plugin("terminalreporter")
    write = tr.write_line if tr is not None else print
    write("request plan" + (" (--plan: nothing is sent)" if config.option.plan else ", before anything is sent") + ":")
    for t in shown:
        for line in t.plan().lines():
            write("  " + line)


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    if getattr(session.config, "_conformance_plan_only", False):
        session.exitstatus = 0   # --plan: the plan was the answer
        return
    run = session.config.stash.get(RUN_KEY, None)
    if run is not None and exitstatus == EXIT_INTERRUPTED:   # Ctrl-C, SIGTERM: keep what was recorded
        stop = session.shouldstop   # pytest's own stop says why; a signal is named
        why = stop if isinstance(stop, str) else ""
        if run.started:
            run.interrupt(_selected_checks(session), why)
        else:   # pytest-xdist's controller records nothing; its results say interrupted all the same
            run.mark_interrupted(why)
    if distributed.finish_session(session, exitstatus):   # pytest-xdist worker or controller
        return
    if run is None or not run.started:
        return
    run.stop()
    try:
        session.config._conformance_results = run.write_results()
    except OSError as e:
        say_unwritten(run, session.config, f"results.json was not written: {e}")
    if not write_reports(run, session.config) and getattr(session.config, "_conformance_results", None):
        with contextlib.suppress(OSError):
            run.write_results()   # its exit_code now says 3
    if exitstatus != EXIT_INTERRUPTED and exitstatus in (0, 1):
        session.exitstatus = run.exit_code()


def _selected_checks(session: pytest.Session) -> list:
    """The (target run, check) pairs this session selected, in order."""
    pairs = []
    for item in getattr(session, "items", None) or []:
        check = getattr(getattr(item, "function", None), "check", None)
        callspec = getattr(item, "callspec", None)
        if check is not None and callspec is not None and "conformance_target" in callspec.params:
            pairs.append((callspec.params["conformance_target"], check))
    return pairs


def pytest_unconfigure(config: pytest.Config) -> None:
    """An interrupted run whose results are written ends now, even if a recording's thread (a
    client the suite cannot reach into) is still blocked: waiting for it is what the interrupt
    asked not to do. The exit code is the interrupted run's."""
    run = config.stash.get(RUN_KEY, None)
    if run is not None and run.interrupted and run.left_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)


# Whose reading of a stream each check's unit metrics are (conformance.analysis.llm_units), in the summary's order.
UNIT_READERS = {"delivery.progressive": "raw recorder", "delivery.compressed": "browser-style request",
                "client.httpx": "httpx", "client.requests": "requests", "client.node-fetch": "node fetch",
                "browser.progressive-render": "Chromium"}


def unit_lines(results: list[dict]) -> list[str]:
    """One line per reader of an SSE/NDJSON stream: units, time to first unit, gaps, rate, merged."""
    out = []
    by_check = {r["check"]: r.get("metrics") or {} for r in results}
    for check, who in UNIT_READERS.items():
        m = by_check.get(check) or {}
        if not m.get("unit_count"):
            continue
        ms = lambda v: "–" if v is None else f"{v * 1000:.0f}"   # noqa: E731
        rate = "–" if m.get("units_per_s") is None else f"{m['units_per_s']:.1f}"
        out.append(f"  {who:<22} {m['unit_count']} {m.get('unit_shape', '')} units: first {ms(m.get('first_unit_s'))} ms, "
                   f"gaps p50/p90/p99/max {ms(m.get('gap_p50_s'))}/{ms(m.get('gap_p90_s'))}/{ms(m.get('gap_p99_s'))}/"
                   f"{ms(m.get('gap_max_s'))} ms, {rate}/s, merged {m.get('units_merged', 0)}")
    return out


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None or not run.started:
        return
    tr = terminalreporter
    tr.section("HTTP streaming conformance")
    for t in run.targets:
        mine = [r for r in run.results if r["target"] == t.id]
        counts = {v: sum(r["verdict"] == v for r in mine) for v in catalogue.VERDICTS}
        text = "  ".join(f"{v} {n}" for v, n in counts.items() if n)
        url = t.target.url if t.target.url and t.target.url != t.id else ""
        tr.write_line(f"{t.id:<28} {text}   {url}")
        for line in unit_lines(mine):
            tr.write_line(line)
        for hop in t.redirects:
            tr.write_line(f"  redirect: {hop}")
        if t.retried:   # run.TargetRun._run_on_trial: one more request each
            tr.write_line(f"  recorded again (a limit found on trial, docs/scheduling.md): {', '.join(sorted(t.retried))}")
        if t.launch_error:
            doing = "could not start" if t.target.builtin else "not recorded"
            tr.write_line(f"  {doing}: {t.launch_error.splitlines()[-1]}")
        if t.skip_reason:
            tr.write_line(f"  skipped: {t.skip_reason}", yellow=True)
    crashes = [r for r in run.results if r.get("crash")]
    for r in crashes:
        c = r["crash"]
        where = f" (recording: {run.options.report_dir / r['recording']})" if r.get("recording") else ""
        tr.write_line(f"\nSUITE FAILURE {r['check']} {r['target']}: the check's judge raised {c['type']}: "
                      f"{c['message']} at {c['where']}{where}", red=True, bold=True)
    if crashes:
        tr.write_line("  This is a bug in the suite, not a verdict on the target: please report it with the traceback "
                      "in results.json ('crash') and the recording. Exit code 3.", red=True)
    errors: dict[tuple[str, str], list[str]] = {}
    for r in run.results:
        if r["verdict"] == "error" and not r.get("crash"):
            errors.setdefault((r["target"], r["observed"]), []).append(r["check"])
    for (target, why), checks in errors.items():
        tr.write_line(f"\nERROR {target}: {len(checks)} checks could not be judged: {why}", red=True)
    causes = {t.id: run.diagnosis(t) for t in run.targets}
    for r in run.results:
        if r["verdict"] not in ("fail", "warn"):
            continue
        colour = dict(red=r["verdict"] == "fail", yellow=r["verdict"] == "warn")
        if "cause" in r:   # said once below, with the cause
            tr.write_line(f"\n{r['verdict'].upper()} {r['check']} [{r['level']}] {r['target']}: see cause "
                          f"{r['cause'] + 1} below", **colour)
        else:
            tr.write_line("\n" + catalogue.describe(r), **colour)
    for tid, found in causes.items():
        for n, c in enumerate(found, 1):
            tr.write_line(f"\nCAUSE {n} {tid}: {c.cause}", bold=True)
            tr.write_line(f"  explains: {', '.join(c.explains)}")
            tr.write_line(f"  hop: {c.hop}")
            tr.write_line(f"  evidence: {c.evidence}")
            tr.write_line(f"  fix: {c.fix}")
    path = getattr(config, "_conformance_results", None)
    if path:
        comparison = run.comparison()   # --baseline: the CI gate (conformance/engine/gate.py)
        if comparison is not None:
            tr.write_line("")
            for colour, line in comparison.summary_lines():
                tr.write_line(line, **({colour: True} if colour else {}))
        if run.interrupted:
            kept = sum(r["verdict"] != "skip" or not r["observed"].startswith("interrupted:") for r in run.results)
            tr.write_line(f"\ninterrupted ({run.interrupted}): {kept} results judged, "
                          f"{len(run.results) - kept} checks not run (skip, \"interrupted: …\")", yellow=True)
        tr.write_line(f"\nresults: {path}   exit code: {run.exit_code()}")
