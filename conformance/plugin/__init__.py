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
from pathlib import Path

import pytest

from conformance.analysis.target import DEFAULT_WATCH_S, MAX_STREAMS, PROFILES, Target
from conformance.checks import catalogue
from conformance.engine import apps, targets_file
from conformance.engine.gate import BaselineError
from conformance.engine.run import EXIT_INTERRUPTED, Options, Run
from conformance.plugin import distributed
from conformance.plugin.fixture import stream_check  # noqa: F401 - the fixture for users' own tests
from conformance.plugin.session import RUN_KEY, collects_checks, write_reports
from conformance.scenarios.chain import set_reference
from conformance.wire.recorder import BadURL, parse_url
from targets.registry import BUILTINS, DEFAULT_TARGETS


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("conformance", "HTTP streaming conformance")
    g.addoption("--target-url", action="append", default=[], metavar="URL", help="a target to check (repeatable); http or https")
    g.addoption("--target", action="append", default=[], metavar="NAME",
                help=f"a built-in target (repeatable); default: {' '.join(DEFAULT_TARGETS)}")
    g.addoption("--targets-file", metavar="PATH", help="a TOML file listing targets (see DESIGN.md)")
    g.addoption("--profile", choices=PROFILES, help="how the body is read for delivery checks (default: from the response's Content-Type)")
    g.addoption("--interval", type=float, metavar="SECONDS",
                help="the producer's expected time between writes (default: inferred from the stream; --profile countdown: 1.0)")
    g.addoption("--watch", type=float, metavar="SECONDS",
                help=f"how long a stream that has not ended is recorded before it is judged on what arrived (default {DEFAULT_WATCH_S:g} s, or the known schedule)")
    g.addoption("--count", type=int, metavar="N", help="countdown length when the URL's /N does not say (built-in targets: the N they serve)")
    g.addoption("--expect-bursts", type=int, metavar="N", help="minimum separate arrivals expected (bytes profile)")
    g.addoption("--time-scale", type=float, default=1.0, metavar="F", help="multiplies every sleep of the built-in targets (1.0 = the seed's timing)")
    g.addoption("--report-dir", default="reports/latest", metavar="DIR", help="where results.json and recordings go")
    # --strict (SHOULD-level findings fail the run) is pytest's own flag; the suite reads it too.
    g.addoption("--insecure", action="store_true", help="do not verify TLS certificates")
    g.addoption("--header", action="append", default=[], metavar="'Name: value'", help="extra request header (repeatable); values are redacted in reports")
    # --timeout (idle timeout per read) is pytest-timeout's option, shared: for check tests it is
    # the read timeout, and each check test gets its own guard as a marker (markers win there).
    g.addoption("--follow-redirects", action="store_true",
                help="follow a URL target's redirects (at most 5; --header values stay with the first origin); by default a 3xx is an error")
    g.addoption("--concurrent-streams", type=int, metavar="N",
                help=f"delivery.concurrent: streams opened at once (default 5, at most {MAX_STREAMS})")
    g.addoption("--reference", metavar="ORIGIN_URL",
                help="the origin behind the --target-url chain, recorded at the same time: delivery.chain judges what the chain adds")
    g.addoption("--large-url", metavar="URL", help="the endpoint delivery.large-body downloads (built-in targets bring their own)")
    g.addoption("--large-size", type=int, metavar="BYTES", help="size of the built-in targets' large body (default 1 GiB)")
    g.addoption("--baseline", metavar="PATH", help="a previous results.json: fail only on regressions against it")
    g.addoption("--repeat", type=int, default=1, metavar="N", help="record each scenario N times and judge by majority")
    g.addoption("--check", action="append", default=[], metavar="ID", help="run only these checks (repeatable; a prefix like framing. selects a group)")
    g.addoption("--skip-check", action="append", default=[], metavar="ID", help="leave out these checks (repeatable)")
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


def targets_from_options(config: pytest.Config) -> list[Target]:
    opt = config.option
    interval = _positive("--interval", opt.interval)
    _positive("--time-scale", opt.time_scale)
    _positive("--timeout", opt.timeout)
    watch = _positive("--watch", opt.watch)
    for name, v in (("--count", opt.count), ("--expect-bursts", opt.expect_bursts), ("--repeat", opt.repeat),
                    ("--large-size", opt.large_size)):
        if v is not None and v < 1:
            raise pytest.UsageError(f"{name} must be at least 1, not {v}")
    headers = _headers(opt.header)
    out: list[Target] = []
    for url in opt.target_url:
        try:
            parse_url(url)
        except BadURL as e:
            raise pytest.UsageError(f"--target-url {e}") from None
        # Without --profile the response decides (Target.profile_of); a countdown named as such
        # keeps the seed's own 1 s pace unless --interval says otherwise.
        profile = opt.profile
        if interval is None and profile == "countdown":
            interval = 1.0
        out.append(Target(url, url, profile, interval, opt.count, opt.expect_bursts, headers, opt.insecure,
                          large_url=opt.large_url, watch=watch))
        if opt.reference:   # delivery.chain (conformance/scenarios/chain.py)
            try:
                set_reference(out[-1], opt.reference)
            except BadURL as e:
                raise pytest.UsageError(f"--reference {e}") from None
        interval = _positive("--interval", opt.interval)
    if opt.targets_file:
        out += targets_file.load(Path(opt.targets_file), defaults=dict(insecure=opt.insecure, headers=headers, watch=watch))
    out += apps.targets_from_options(opt, profile=opt.profile, count=opt.count,
                                     interval=1.0 if interval is None and opt.profile == "countdown" else interval,
                                     expect_bursts=opt.expect_bursts, headers=headers, watch=watch,
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
        out.append(Target(name, None, b.profile, pace, opt.count, None, headers,
                          insecure=b.insecure or opt.insecure, builtin=name,
                          large_url=opt.large_url, watch=watch))
    if opt.concurrent_streams is not None:
        if not 1 <= opt.concurrent_streams <= MAX_STREAMS:
            raise pytest.UsageError(f"--concurrent-streams must be 1 to {MAX_STREAMS}, not {opt.concurrent_streams}")
        for t in out:
            t.concurrent_streams = opt.concurrent_streams
    ids = [t.id for t in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise pytest.UsageError(f"target named twice: {', '.join(sorted(dupes))}")
    return out


def pytest_configure(config: pytest.Config) -> None:
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
                      secret_headers=tuple(n for n, _ in _headers(config.option.header)),
                      follow_redirects=config.option.follow_redirects)
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


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
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
    path = run.write_results()
    session.config._conformance_results = path
    write_reports(run, session.config)
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
        for hop in t.redirects:
            tr.write_line(f"  redirect: {hop}")
        if t.launch_error:
            doing = "could not start" if t.target.builtin else "not recorded"
            tr.write_line(f"  {doing}: {t.launch_error.splitlines()[-1]}")
        if t.skip_reason:
            tr.write_line(f"  skipped: {t.skip_reason}", yellow=True)
    errors: dict[tuple[str, str], list[str]] = {}
    for r in run.results:
        if r["verdict"] == "error":
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
