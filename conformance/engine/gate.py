"""The CI gate: verdicts compared with a baseline, and verdicts by majority over repeated runs.

``--baseline PATH`` compares this run's verdicts with a previous ``results.json``, per (target,
check). Only a **regression** fails the gate: a check that passed (``pass``, or ``info`` for INFO
checks) in the baseline and now fails or errors. Everything else is listed, not judged:
improvements (a ``fail``, ``error`` or ``warn`` that now passes), new warnings (a pass that is
now ``warn``), failures of checks or targets the baseline does not have, and baseline results
this run did not produce. With a baseline the exit code is 0 when nothing regressed, even if
checks fail, and 1 on any regression; 2, 4 and 5 keep their meanings (interrupted, usage error,
no check ran). See ``docs/gate.md``.

``--repeat N`` records each scenario N times; every check judges each recording and the verdict
that most runs gave wins, a tie going to the worse verdict (``SEVERITY``). The finding shown,
its metrics and its recording are those of the median run among the runs that gave the winning
verdict (``majority``).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from conformance.checks.catalogue import Finding, canonical

# For ties under --repeat: the worse verdict wins. skip is worse than pass (a check that could
# not even apply half the time has not shown that it passes).
SEVERITY = {"pass": 0, "info": 0, "skip": 1, "warn": 2, "fail": 3, "error": 4}
GOOD = frozenset({"pass", "info"})
BAD = frozenset({"fail", "error"})


class BaselineError(ValueError):
    """The baseline file cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class Change:
    target: str
    check: str
    before: str | None   # None: not in the baseline
    after: str | None    # None: not in this run

    def line(self) -> str:
        return f"{self.target} {self.check}: {self.before or 'absent'} -> {self.after or 'absent'}"

    def to_dict(self) -> dict:
        return {"target": self.target, "check": self.check, "before": self.before, "after": self.after}


@dataclass
class Comparison:
    baseline: str
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)
    new_warnings: list[Change] = field(default_factory=list)
    new_failures: list[Change] = field(default_factory=list)   # not in the baseline, failing now
    not_run: list[Change] = field(default_factory=list)        # in the baseline, not in this run

    @property
    def passed(self) -> bool:
        return not self.regressions

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "passed": self.passed,
                **{k: [c.to_dict() for c in getattr(self, k)]
                   for k in ("regressions", "improvements", "new_warnings", "new_failures", "not_run")}}

    def summary_lines(self) -> list[tuple[str, str]]:
        """(colour, line) pairs for the terminal: regressions first, then what else changed."""
        out = [("red" if self.regressions else "green",
                f"gate against {self.baseline}: {len(self.regressions)} regression(s), "
                f"{len(self.improvements)} improvement(s)")]
        for title, colour, changes in (("regression", "red", self.regressions),
                                       ("improvement", "green", self.improvements),
                                       ("new warning", "yellow", self.new_warnings),
                                       ("new check or target failing (not in the baseline)", "yellow",
                                        self.new_failures),
                                       ("in the baseline, not run now", "", self.not_run)):
            for c in changes:
                out.append((colour, f"  {title}: {c.line()}"))
        return out


def load_baseline(path: Path) -> dict[tuple[str, str], str]:
    """A previous results.json as {(target, check): verdict}."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise BaselineError(f"--baseline {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BaselineError(f"--baseline {path}: not JSON: {e}") from None
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list):
        raise BaselineError(f"--baseline {path}: not a results.json (no \"results\" list)")
    out = {}
    for i, r in enumerate(results):
        if not (isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("target", "check", "verdict"))):
            raise BaselineError(f"--baseline {path}: results[{i}] lacks target, check or verdict")
        out[(r["target"], canonical(r["check"]))] = r["verdict"]   # a former ID counts as its new one
    return out


def compare(baseline: dict[tuple[str, str], str], results: list[dict], name: str = "baseline") -> Comparison:
    now = {(r["target"], r["check"]): r["verdict"] for r in results}
    cmp = Comparison(name)
    for key, after in now.items():
        before = baseline.get(key)
        change = Change(key[0], key[1], before, after)
        if before is None:
            if after in BAD:
                cmp.new_failures.append(change)
        elif before in GOOD and after in BAD:
            cmp.regressions.append(change)
        elif before not in GOOD and before != "skip" and after in GOOD:
            cmp.improvements.append(change)
        elif before in GOOD and after == "warn":
            cmp.new_warnings.append(change)
    ran_targets = {t for t, _ in now}
    for key, before in baseline.items():
        if key not in now and key[0] in ran_targets:
            cmp.not_run.append(Change(key[0], key[1], before, None))
    return cmp


def majority(findings: list[Finding]) -> tuple[int, Finding]:
    """The verdict most runs gave (a tie: the worse one) and the index of the median run among
    the runs that gave it, whose finding (observed text, metrics) stands for them all."""
    if len(findings) == 1:
        return 0, findings[0]
    for i, f in enumerate(findings):   # the suite's own failure in any run is never outvoted
        if f.crash is not None:
            return i, f
    counts = Counter(f.verdict for f in findings)
    top = max(counts.values())
    verdict = max((v for v, n in counts.items() if n == top), key=lambda v: SEVERITY.get(v, 5))
    chosen = [i for i, f in enumerate(findings) if f.verdict == verdict]
    best = _median_run(chosen, findings)
    rep = findings[best]
    tally = ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda vn: -vn[1]))
    metrics = dict(rep.metrics, repeat_runs=len(findings), repeat_verdicts=tally)
    observed = f"{rep.observed} [majority of {len(findings)} runs: {tally}]"
    return best, Finding(verdict, observed, rep.expected, metrics)


def _median_run(chosen: list[int], findings: list[Finding]) -> int:
    """The run closest to the middle on every numeric metric the runs share (sum of distances
    from the middle rank); without numeric metrics, the middle run in time."""
    keys = [k for k, v in findings[chosen[0]].metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            and all(isinstance(findings[i].metrics.get(k), (int, float)) for i in chosen)]
    if not keys or len(chosen) <= 2:
        return chosen[(len(chosen) - 1) // 2]
    middle = (len(chosen) - 1) / 2
    score = {i: 0.0 for i in chosen}
    for k in keys:
        for rank, i in enumerate(sorted(chosen, key=lambda i: findings[i].metrics[k])):
            score[i] += abs(rank - middle)
    return min(chosen, key=lambda i: (score[i], i))
