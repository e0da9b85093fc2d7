"""The check catalogue: every check's ID, level, spec section, quoted requirement and judge.

A check is declared once with ``@check(...)`` in a module that reads like a spec section
(``conformance/checks/test_*.py``). The decorator registers the judge here and hands pytest a
test function in its place, so the same check runs under pytest (one test per target) and
from plain Python (the suite's own tests call ``judge`` directly).

A judge receives the recording of its scenario and the target, and returns a ``Finding`` whose
verdict is ``pass``, ``fail``, ``info`` or ``skip``; the check's level then decides what a
failure means (MUST: fail; SHOULD: warn, or fail under ``--strict``). ``error`` is reserved for
what could not be judged: a target that could not be reached or answered GET with non-2xx
(docs/design.md, exit 6). A check of another scenario (HEAD, HTTP/1.0, several streams, a client) is
judged with the target's GET recording beside it (``judge(..., get=)``): when GET was answered
2xx, that scenario's own failure (no head in time, a non-2xx answer, a client that broke) is the
server's answer and is judged as such, a ``fail`` (or the check's ``unanswered`` verdict, such as
``skip`` for a check that needs the answer another check judges), never ``error``.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable

import conformance.checks as pkg
from conformance.wire.redirects import is_redirect, location_note

MUST, SHOULD, INFO = "MUST", "SHOULD", "INFO"
VERDICTS = ("pass", "fail", "warn", "info", "skip", "error")


@dataclass
class Finding:
    verdict: str
    observed: str
    expected: str = ""
    metrics: dict = field(default_factory=dict)
    # the judge raised (a bug in the suite, not the server's fault): {"type", "message", "where"};
    # the verdict is then ``error`` and the run exits 3 (docs: exit codes)
    crash: dict | None = None
    # content the reader never got (fewer units than the wire delivered): a failure whatever the
    # check's level, as lost data is not a matter of "should" (DESIGN.md, clients)
    content_lost: bool = False


def crashed(check_id: str, exc: BaseException) -> Finding:
    """The finding of a check whose judge (or the code around it) raised ``exc``: ``error``, with
    the exception's type, message and where it was raised (``file:line``; for a library's frame,
    also the suite's line that called it), so the run says the suite failed (exit 3) instead of
    losing the check."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{_short_path(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"
    own = [f for f in frames if "/conformance/" in f.filename.replace("\\", "/")]
    if own and own[-1] is not frames[-1]:   # raised in a library: where the suite called it, too
        where += f" (called from {_short_path(own[-1].filename)}:{own[-1].lineno})"
    message = str(exc)[:500]
    crash = {"type": type(exc).__name__, "message": message, "where": where,
             "traceback": "".join(traceback.format_exception(exc))[-4000:]}
    return Finding("error", f"the suite itself failed: {check_id}'s judge raised {type(exc).__name__}: {message} "
                   f"({where}); this is a bug in the suite, not a verdict on the target",
                   "a verdict (please report this, with the recording)", {}, crash)


def _short_path(path: str) -> str:
    norm = path.replace("\\", "/")
    i = norm.rfind("/conformance/")
    return norm[i + 1:] if i >= 0 else norm


def passed(observed: str, expected: str = "", **metrics) -> Finding:
    return Finding("pass", observed, expected, metrics)


def failed(observed: str, expected: str = "", **metrics) -> Finding:
    return Finding("fail", observed, expected, metrics)


def noted(observed: str, expected: str = "", **metrics) -> Finding:
    return Finding("info", observed, expected, metrics)


def skipped(reason: str) -> Finding:
    return Finding("skip", reason)


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    spec: str
    requirement: str
    title: str                 # one line: what the check looks at
    scenario: str              # which scenario's record it reads (see scenarios.py)
    judge_fn: Callable = field(compare=False, repr=False)
    needs_success: bool = True  # a non-2xx answer makes it an error (or, GET answered, unanswered)
    unanswered: str = "fail"    # the verdict when this scenario failed but GET was answered 2xx
    # Traits, said where the check is declared (``@check(..., trait=True)``), read by the engine:
    head_only: bool = False      # reads the response head alone: its fail on an interrupted recording stands
    watches: bool = False        # its pass says nothing happened while it watched: not on a watch cut short
    timed: bool = False          # judges timing: a server still busy with the suite's streams can decide it
    held_by_a_hold: bool = False  # fails when the stream is held on the way: a hold found explains its failure

    def judge(self, rec, target, strict: bool = False, get=None) -> Finding:
        """Judge a recording; never raises for anything the server sent. ``get``: the target's GET
        recording, for a check of another scenario (see the module's docstring). A judge that
        raises is a bug in the suite: its finding is ``crashed(...)`` (error, with where; exit 3)."""
        try:
            finding = self._judge(rec, target)
        except Exception as e:  # noqa: BLE001 - any judge's bug becomes a result, never a lost check
            return crashed(self.id, e)
        beside = get is not None and self.scenario != "get"
        if beside and no_answer(get):   # the target could not be judged: its own error, or GET's
            if finding.verdict == "error" or unanswered_here(rec):   # one cause, said once: the GET's
                finding = Finding("error", *no_answer(get))   # said as the GET's checks say it
        elif beside and finding.verdict == "error" and not (getattr(rec, "error", None) or "").startswith(INTERRUPTED):
            finding = Finding(self.unanswered, f"{finding.observed} (while GET was answered {get.status} "
                              f"{get.reason}".rstrip() + ")", finding.expected or "an answer, as GET gets", finding.metrics)
        if finding.verdict == "fail" and self.level == SHOULD and not strict and not finding.content_lost:
            finding.verdict = "warn"
        if finding.verdict == "pass" and self.level == INFO:
            finding.verdict = "info"
        return finding

    def _judge(self, rec, target) -> Finding:
        if rec is None:
            return Finding("error", f"the {self.scenario!r} exchange was not recorded")
        why = no_answer(rec) if rec.error or self.needs_success else None
        return Finding("error", *why) if why else self.judge_fn(rec, target)


INTERRUPTED = "the run was interrupted"


def unanswered_here(rec) -> bool:
    """The scenario's own exchange got no answer, or a non-2xx one (any record type; one that
    did not apply, with its skip reason, is neither)."""
    if rec is not None and (getattr(rec, "skip", None) or getattr(rec, "skip_reason", None)):
        return False
    return rec is None or bool(getattr(rec, "error", None)) or \
        (hasattr(rec, "status") and not 200 <= (rec.status or 0) < 300)


def no_answer(rec) -> tuple[str, str] | None:
    """Why a recording is no answer to judge (not reached, a redirect, non-2xx) as (observed,
    expected), or None."""
    if rec.error:
        return rec.error, ""
    if not hasattr(rec, "status"):
        return None
    if is_redirect(rec.status):
        return location_note(rec), "a 2xx response"
    if not (200 <= (rec.status or 0) < 300):
        return refused(rec), "a 2xx response"
    return None


def refused(rec) -> str:
    """A non-2xx first answer as one line that says what to do: 405 names the methods in
    ``Allow`` and the options that send another request; 401/403 says credentials are needed;
    anything else shows the start of the error body."""
    status = f"HTTP {rec.status} {rec.reason}".rstrip()
    start = rec.body[:200].decode("utf-8", "replace")
    method = getattr(rec, "method", "GET") or "GET"
    if rec.status == 405:
        allow = ", ".join(rec.header_values("allow")) if hasattr(rec, "header_values") else ""
        other = next((m.strip() for m in allow.split(",") if m.strip() and m.strip() not in ("GET", "HEAD", "OPTIONS")),
                     "POST")
        return (f"{status}: the endpoint does not take {method}" + (f" (Allow: {allow})" if allow else "")
                + f"; send the request it takes: -X {other} --json @request.json, or the API's own curl command "
                  f"with --curl 'curl ...'")
    if rec.status in (401, 403):
        return (f"{status}: credentials are needed (or not enough): -H 'Authorization: Bearer ...' "
                f"(or the API's own curl command with --curl 'curl ...'); the body starts {start!r}")
    if rec.status in (400, 422):
        return f"{status}: the request was refused; the body starts {start!r} (check the body: -d, --json)"
    return f"{status}; the body starts {start!r}"


CHECKS: dict[str, Check] = {}
# Former IDs still accepted in --check, --skip-check and baselines (docs/design.md), with their IDs now.
ALIASES = {"delivery.gzip": "delivery.compressed"}


def canonical(cid: str) -> str:
    return ALIASES.get(cid, cid)


def check(id: str, level: str, spec: str, requirement: str, scenario: str = "get", needs_success: bool = True,
          unanswered: str = "fail", *, head_only: bool = False, watches: bool = False, timed: bool = False,
          held_by_a_hold: bool = False):
    """Register a judge ``f(recording, target) -> Finding`` and return its pytest test; the
    keyword-only flags are the check's traits (``Check``)."""
    def register(judge_fn: Callable) -> Callable:
        title = (judge_fn.__doc__ or id).strip().splitlines()[0]
        spec_check = Check(id, level, spec, requirement, title, scenario, judge_fn, needs_success, unanswered,
                           head_only, watches, timed, held_by_a_hold)
        if id in CHECKS:
            raise ValueError(f"check {id} declared twice")
        CHECKS[id] = spec_check

        def test(conformance_target):
            try:
                finding = conformance_target.run_check(spec_check)
            except Exception as e:  # noqa: BLE001 - outside the judge (settling, repeats): still a result
                finding = crashed(spec_check.id, e)
                conformance_target.run.add_result(conformance_target, spec_check, finding, None)
            _pytest_outcome(finding, conformance_target.results_for(spec_check))

        test.__name__ = judge_fn.__name__ if judge_fn.__name__.startswith("test_") else "test_" + judge_fn.__name__
        test.__qualname__ = test.__name__
        test.__doc__ = f"{id} ({level}, {spec}): {title}"
        test.__module__ = judge_fn.__module__
        test.check = spec_check
        return test
    return register


def describe(r: dict) -> str:
    """A result as the terminal and pytest's failure report show it."""
    lines = [f"{r['verdict'].upper()} {r['check']} [{r['level']}] {r['target']}",
             f"  requirement ({r['spec']}): {r['requirement']}"]
    if r.get("expected"):
        lines.append(f"  expected: {r['expected']}")
    lines.append(f"  observed: {r['observed']}")
    return "\n".join(lines)


def _pytest_outcome(finding: Finding, result: dict) -> None:
    import pytest
    if finding.crash is not None:   # the suite's own bug: where it was, for the report to us
        pytest.fail(f"ERROR {result['check']} {result['target']}: {finding.observed}\n"
                    f"{finding.crash.get('traceback', '')}", pytrace=False)
    if finding.verdict == "error":   # one line: the same cause usually repeats for every check
        pytest.fail(f"ERROR {result['check']} {result['target']}: {finding.observed}", pytrace=False)
    if finding.verdict == "fail":
        pytest.fail(describe(result), pytrace=False)
    if finding.verdict == "skip":
        pytest.skip(finding.observed)


def load_all() -> dict[str, Check]:
    """Import every check module so the catalogue is complete."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return CHECKS


def select(patterns: list[str], skip: list[str]) -> list[str]:
    """Check IDs chosen by ``--check`` / ``--skip-check`` (exact IDs or prefixes like ``framing.``)."""
    def matches(cid, pat):
        pat = canonical(pat)
        return cid == pat or (pat.endswith(".") and cid.startswith(pat)) or cid.startswith(pat + ".")
    ids = list(CHECKS)
    if patterns:
        ids = [c for c in ids if any(matches(c, p) for p in patterns)]
    return [c for c in ids if not any(matches(c, p) for p in skip)]


def unknown(patterns: list[str]) -> list[str]:
    return [p for p in patterns if p not in ALIASES
            and not any(c == p or c.startswith(p if p.endswith(".") else p + ".") for c in CHECKS)]
