"""pytest-xdist: ``pytest conformance -n N`` gives one ``results.json`` and ``report.html``.

Record once per target: all checks of a target run on one worker, and each worker records only
its own targets, so no target is recorded twice and no server sees two suites at once.

- **Scheduling (controller).** For runs of the check catalogue the plugin replaces xdist's
  scheduler, whatever ``--dist`` says (``load`` and ``each`` would split or repeat a target), with
  ``TargetScheduling``: xdist's ``loadscope`` scheduling whose scope is the target (the
  parametrization of a check test's node ID). Every target is handed out when the run starts,
  round-robin in collection order (``plan``); a worker that dies has its targets' remaining
  checks moved to another worker by xdist's own rules, and that worker starts them on demand.
- **Workers.** Each worker computes the same ``plan`` from its own collection (identical on every
  worker: xdist checks), so before its first check it starts all of its targets at once and
  records them side by side, as a single-process run does with all of them; targets planned
  for other workers are never started. A worker writes its recordings to the report dir (file
  names are per target, so two workers never write the same file) and hands its partial
  ``results.json`` document to the controller (xdist's ``workeroutput``) instead of writing
  ``results.json`` itself.
- **Controller.** It merges the partial documents (``shards.merge_documents``: each target once,
  exit code and gate recomputed from all results), writes ``results.json`` and ``report.html``,
  prints the suite's summary and sets the exit code, as a single-process run does.

Loaded by the plugin only when pytest-xdist is; its xdist hooks are optional hooks.
"""
from __future__ import annotations

import contextlib
import functools
import json
import pkgutil
import shutil
import signal
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conformance import checks
from conformance.engine.run import EXIT_INTERRUPTED, EXIT_SUITE_FAILED, _raise_interrupt
from conformance.plugin.session import RUN_KEY, collects_checks, write_reports
from conformance.report import shards

OUTPUT_KEY = "conformance.results"   # the worker's partial results.json, as JSON text
PARTIAL_DIR = ".partial"              # in the report dir: workers' partial documents, per run
_PARTS = pytest.StashKey[list]()      # controller: (worker id, document) as workers go down
_CRASHED = pytest.StashKey[list]()    # controller: workers that went down with an error
_START = pytest.StashKey[tuple]()     # controller: (monotonic, wall) when the session started


def target_scope(nodeid: str) -> str | None:
    """The target a check test's node ID is parametrized with (``...checks/test_x.py::test_y[ID]``),
    or None for any other test. A target ID may itself hold ``::`` or brackets (``[::1]``)."""
    path, sep, rest = nodeid.partition("::")
    if not sep or path.rsplit("/", 1)[-1] not in _check_files() or "[" not in rest or not rest.endswith("]"):
        return None
    return "target:" + rest[rest.index("[") + 1:-1]


@functools.lru_cache(maxsize=1)
def _check_files() -> frozenset[str]:
    """The check modules' file names (a node ID's path depends on pytest's rootdir)."""
    return frozenset(f"{m.name}.py" for m in pkgutil.iter_modules(checks.__path__))


def scope_of(nodeid: str) -> str:
    """A check test's target, else xdist's loadscope scope (the module or class)."""
    return target_scope(nodeid) or nodeid.rsplit("::", 1)[0]


def plan(nodeids: list[str], workers: int) -> dict[str, int]:
    """Which worker (0..workers-1) runs each scope: round-robin in collection order. The
    controller and every worker compute it from the same collection, so they agree."""
    scopes = list(dict.fromkeys(scope_of(n) for n in nodeids))
    return {scope: i % max(1, workers) for i, scope in enumerate(scopes)}


def worker_index(worker_id: str) -> int | None:
    return int(worker_id[2:]) if worker_id.startswith("gw") and worker_id[2:].isdigit() else None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_controller(config: pytest.Config) -> bool:
    return not _is_worker(config) and config.pluginmanager.has_plugin("dsession")


def _runs_checks(config: pytest.Config) -> bool:
    return collects_checks(config)


# --- controller -------------------------------------------------------------------------------

def _scheduler_class():
    from xdist.scheduler import LoadScopeScheduling

    class TargetScheduling(LoadScopeScheduling):
        """loadscope with the target as the scope, every scope assigned when the run starts."""

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def schedule(self) -> None:
            assert self.collection_is_completed
            if self.collection is not None:        # a node came later, or one died: xdist's rules
                for node in self.nodes:
                    self._reschedule(node)
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = list(next(iter(self.registered_collections.values())))
            if not self.collection:
                return
            units: dict[str, dict[str, bool]] = {}
            for nodeid in self.collection:
                units.setdefault(self._split_scope(nodeid), {})[nodeid] = False
            by_index = {worker_index(n.gateway.id): n for n in self.nodes}
            planned = plan(self.collection, self.numnodes)
            for scope, unit in units.items():
                node = by_index.get(planned[scope])
                if node is None:   # its worker never came up: the least loaded one that did
                    node = min(self.nodes, key=lambda n: self._pending_of(self.assigned_work[n]))
                self.assigned_work[node][scope] = unit
            for node in self.nodes:
                indexes = [self.registered_collections[node].index(nodeid)
                           for unit in self.assigned_work[node].values() for nodeid in unit]
                if indexes:
                    node.send_runtest_some(sorted(indexes))   # collection order, as without -n
                node.shutdown()

    return TargetScheduling


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if not _runs_checks(config):
        return None   # not the catalogue: xdist's own scheduling
    return _scheduler_class()(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    config.stash[_START] = (time.monotonic(), datetime.now(timezone.utc))
    if _is_controller(config) and _runs_checks(config) and threading.current_thread() is threading.main_thread():
        # SIGTERM (CI cancelling a job) unwinds the controller as Ctrl-C does, so xdist ends its
        # workers (and their servers) instead of leaving them running without a controller.
        signal.signal(signal.SIGTERM, _raise_interrupt)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    config = node.config
    text = getattr(node, "workeroutput", {}).get(OUTPUT_KEY)
    if text:
        config.stash.setdefault(_PARTS, []).append((node.gateway.id, json.loads(text)))
    if error is not None:
        config.stash.setdefault(_CRASHED, []).append(node.gateway.id)


def _finish_controller(session: pytest.Session, exitstatus) -> None:
    config = session.config
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    parts = dict(config.stash.get(_PARTS, []))
    dsession = config.pluginmanager.get_plugin("dsession")
    uid = getattr(getattr(dsession, "nodemanager", None), "testrunuid", None)
    folder = _partial_dir(run.options.report_dir, uid) if uid else None
    if folder is not None and folder.is_dir():   # workers whose report did not come (Ctrl-C)
        for path in sorted(folder.glob("gw*.json")):
            if path.stem not in parts:
                with contextlib.suppress(OSError, ValueError):
                    parts[path.stem] = json.loads(path.read_text())
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()   # only when no other run's partials are there
    parts = sorted(parts.items(), key=lambda p: worker_index(p[0]) or 0)
    if not parts:
        return   # no check ran anywhere
    start, wall = config.stash.get(_START, (time.monotonic(), datetime.now(timezone.utc)))
    tr = config.pluginmanager.get_plugin("terminalreporter")
    try:
        merged = shards.merge_documents([(f"worker {wid}", doc) for wid, doc in parts],
                                        baseline=run.options.baseline, duration_s=time.monotonic() - start,
                                        all_targets=run.results_document()["targets"])
    except shards.MergeError as e:   # a bug: say it loudly, never exit 0
        if tr is not None:
            tr.write_line(f"results.json was not written: the workers' results do not join: {e}", red=True)
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    crashed = config.stash.get(_CRASHED, [])
    if crashed:
        merged["workers_down"] = crashed
    if run.interrupted:   # whatever the workers' verdicts (docs/guide.md, "Exit codes")
        merged["exit_code"], merged["interrupted"] = EXIT_INTERRUPTED, run.interrupted
    # The summary (plugin.pytest_terminal_summary) reads the run: give it the merged one.
    run.results = merged["results"]
    run.started_at, run.started_wall = start, wall
    entries = {t["id"]: t for t in merged["targets"]}
    for t in run.targets:
        entry = entries.get(t.id, {})
        t.target = replace(t.target, url=entry.get("url", t.target.url))
        t.launch_error, t.skip_reason = entry.get("error"), entry.get("skipped")
        t.redirects = entry.get("redirects", [])
    config._conformance_results = shards.write_document(run.options.report_dir, merged)
    written = write_reports(run, config)
    if exitstatus != EXIT_INTERRUPTED and exitstatus in (0, 1):
        code = merged["exit_code"] if written else EXIT_SUITE_FAILED
        # a worker that died took results with it: never turn that into a pass
        session.exitstatus = 1 if crashed and code == 0 else code
    if crashed and tr is not None:
        tr.write_line(f"worker(s) {', '.join(crashed)} went down: their targets' results may be missing", red=True)


# --- worker -----------------------------------------------------------------------------------

def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker: the targets this worker records (``plan``), before its first check runs."""
    config = session.config
    if not _is_worker(config):
        return
    run = config.stash.get(RUN_KEY, None)
    me = worker_index(config.workerinput.get("workerid", ""))
    if run is None or me is None:
        return
    planned = plan([item.nodeid for item in session.items], int(config.workerinput.get("workercount", 1)))
    owned = set()
    for item in session.items:
        trun = getattr(getattr(item, "callspec", None), "params", {}).get("conformance_target")
        if trun is not None and target_scope(item.nodeid) and planned[scope_of(item.nodeid)] == me:
            owned.add(trun.id)
    run.owned = owned


def _partial_dir(report_dir: Path, testrunuid: str) -> Path:
    """Where workers also leave their partial documents: the controller reads them when a
    worker's own report did not reach it (an interrupted run), then removes them."""
    return Path(report_dir) / PARTIAL_DIR / "".join(c for c in testrunuid if c.isalnum())


def _finish_worker(session: pytest.Session) -> None:
    config = session.config
    run = config.stash.get(RUN_KEY, None)
    if run is None or not run.started:
        return
    run.stop()
    doc = run.results_document()
    mine = {t.id for t in run.targets if t.begun}
    doc["targets"] = [t for t in doc["targets"] if t["id"] in mine]
    doc["results"] = [r for r in doc["results"] if r["target"] in mine]
    text = json.dumps(doc)
    config.workeroutput[OUTPUT_KEY] = text
    wid, uid = config.workerinput.get("workerid", "gw"), config.workerinput.get("testrunuid", "")
    folder = _partial_dir(run.options.report_dir, uid)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{wid}.json.tmp"
    tmp.write_text(text)
    tmp.replace(folder / f"{wid}.json")


def finish_session(session: pytest.Session, exitstatus) -> bool:
    """The plugin's ``pytest_sessionfinish`` under pytest-xdist: True when handled here."""
    config = session.config
    if _is_worker(config):
        _finish_worker(session)
        return True
    if _is_controller(config):
        _finish_controller(session, exitstatus)
        return True
    return False
