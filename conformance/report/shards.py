"""Joining partial runs into one ``results.json``: pytest-xdist workers (``distributed.py``) and
CI shards (``python -m conformance.report merge DIR... [--out DIR]``).

A shard is one run's document (``results.json``) over some of the targets. Shards join when no
target appears in two of them (each target's recordings are made once, by one shard), when
they come from the same suite (name and version), and when each is valid against
``conformance/schema/results.schema.json``. The merged document lists every target once, in
the shards' order, and every result once; its ``exit_code`` (and ``gate``, when a baseline is
given) is computed again from the merged results by the same rule a single run uses
(``Run.exit_code``), so a merged run exits as the same run made in one piece would.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conformance import schema
from conformance.engine.gate import BaselineError
from conformance.engine.run import Options, Run
from conformance.report import write_html

RESULTS_NAME = "results.json"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class MergeError(ValueError):
    """Shards that cannot be joined: invalid, from different suites, or naming a target twice."""


def validate(doc, where: str) -> None:
    """``doc`` must be a results.json document (the shipped JSON Schema; jsonschema is a dev
    dependency, so without it the fields the merge reads are checked by hand)."""
    try:
        import jsonschema
    except ImportError:
        _validate_by_hand(doc, where)
        return
    try:
        schema.validate(doc, "results")
    except jsonschema.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "the document"
        raise MergeError(f"{where}: not a valid results.json ({path}: {e.message})") from None


def _validate_by_hand(doc, where: str) -> None:
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        raise MergeError(f"{where}: not a results.json of schema 1")
    for key in ("targets", "results"):
        if not isinstance(doc.get(key), list) or not all(isinstance(x, dict) for x in doc[key]):
            raise MergeError(f"{where}: not a valid results.json ({key} must be a list of objects)")
    for i, r in enumerate(doc["results"]):
        if not all(isinstance(r.get(k), str) for k in ("target", "check", "verdict")):
            raise MergeError(f"{where}: not a valid results.json (results/{i} lacks target, check or verdict)")


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value.split(".")[0].rstrip("Z") + "Z", TIME_FORMAT).replace(tzinfo=timezone.utc)


def merge_documents(docs: list[tuple[str, dict]], baseline: Path | None = None,
                    duration_s: float | None = None, all_targets: list[dict] | None = None) -> dict:
    """One results.json from shards, each given as (where it came from, document).

    ``all_targets``: the run's whole target list (pytest-xdist: the controller's), so a target
    that no shard recorded is still listed, as in a run made in one piece. ``duration_s``: the
    run's own wall time when known; otherwise the span from the first shard's start to the last
    one's end."""
    if not docs:
        raise MergeError("nothing to merge")
    for where, doc in docs:
        validate(doc, where)
    suites = {(d["suite"]["name"], d["suite"]["version"]) for _, d in docs}
    if len(suites) > 1:
        listed = "; ".join(f"{w}: {d['suite']['name']} {d['suite']['version']}" for w, d in docs)
        raise MergeError(f"the shards come from different suite versions ({listed})")
    owner: dict[str, str] = {}
    targets: dict[str, dict] = {}
    results: list[dict] = []
    for where, doc in docs:
        ids = [t["id"] for t in doc["targets"]]
        for tid in ids:
            if ids.count(tid) > 1:
                raise MergeError(f"{where}: target {tid!r} listed twice")
            if tid in owner:
                raise MergeError(f"target {tid!r} is in two shards ({owner[tid]} and {where}): "
                                 "each target must be recorded by one shard only")
            owner[tid] = where
        for t in doc["targets"]:
            targets[t["id"]] = t
        seen = set()
        for i, r in enumerate(doc["results"]):
            if r["target"] not in owner or owner[r["target"]] != where:
                raise MergeError(f"{where}: results/{i} names target {r['target']!r}, which its targets list lacks")
            key = (r["target"], r["check"])
            if key in seen:
                raise MergeError(f"{where}: {r['check']} of {r['target']!r} appears twice")
            seen.add(key)
            results.append(r)
    fallback = {t["id"]: t for t in all_targets or []}
    order = list(dict.fromkeys([*fallback, *targets]))
    listed = [targets.get(tid) or fallback[tid] for tid in order]
    rank = {tid: i for i, tid in enumerate(order)}
    results.sort(key=lambda r: rank[r["target"]])   # stable: each shard's own check order kept

    starts = [_parse_time(d["started_at"]) for _, d in docs]
    ends = [s + timedelta(seconds=d["duration_s"]) for s, (_, d) in zip(starts, docs)]
    if duration_s is None:
        duration_s = (max(ends) - min(starts)).total_seconds()
    name, version = suites.pop()
    merged = {
        "schema": 1,
        "suite": {"name": name, "version": version},
        "started_at": min(starts).strftime(TIME_FORMAT),
        "duration_s": round(max(0.0, duration_s), 3),
        "targets": listed,
        "results": results,
    }
    run = _judge(results, baseline)
    merged["exit_code"] = run.exit_code()
    if run.baseline is not None:
        merged["gate"] = run.comparison().to_dict()
    return merged


def _judge(results: list[dict], baseline: Path | None):
    """A Run holding the merged results, for the suite's own exit-code and gate rules."""
    run = Run([], Options(baseline=baseline))
    run.results = results
    return run


def _read_shard(path: Path) -> tuple[Path, dict]:
    """(report dir, its results.json) for a shard given as a dir or as its results.json."""
    report_dir = path.parent if path.name == RESULTS_NAME and path.is_file() else path
    results = report_dir / RESULTS_NAME
    if not report_dir.is_dir():
        raise MergeError(f"{path}: no such directory")
    try:
        text = results.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MergeError(f"{report_dir}: no {RESULTS_NAME} there") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MergeError(f"{results}: cannot read it: {e}") from None
    try:
        doc = json.loads(text)
    except ValueError as e:   # e.g. two documents concatenated by racing writers
        raise MergeError(f"{results}: not one JSON document: {e}") from None
    return report_dir, doc


def merge_dirs(dirs: list[Path], out: Path, baseline: Path | None = None) -> dict:
    """Join shard report dirs into ``out``: results.json, recordings/ (copied), report.html.
    Nothing is written when the shards conflict or are invalid (``MergeError``)."""
    shards = [_read_shard(Path(d)) for d in dirs]
    resolved = [d.resolve() for d, _ in shards]
    dupes = {str(d) for d in resolved if resolved.count(d) > 1}
    if dupes:
        raise MergeError(f"the same shard given twice: {', '.join(sorted(dupes))}")
    merged = merge_documents([(str(d / RESULTS_NAME), doc) for d, doc in shards], baseline=baseline)
    copies: dict[str, Path] = {}
    for d, doc in shards:
        for r in doc["results"]:
            rel = r.get("recording")
            if not rel:
                continue
            src = d / rel
            if not src.is_file():
                raise MergeError(f"{d / RESULTS_NAME}: {r['check']} of {r['target']!r} names {rel}, "
                                 f"which is not in {d}")
            if rel in copies and copies[rel].resolve() != src.resolve() and \
                    copies[rel].read_bytes() != src.read_bytes():
                raise MergeError(f"{rel} differs between {copies[rel].parent.parent} and {d}")
            copies.setdefault(rel, src)
    out = Path(out)
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    for rel, src in copies.items():
        dst = out / rel
        if dst.resolve() != src.resolve():
            shutil.copyfile(src, dst)
    write_document(out, merged)
    write_html(out)
    return merged


def write_document(report_dir: Path, doc: dict) -> Path:
    """Write results.json atomically (a reader never sees half of it, or two of them)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / RESULTS_NAME
    tmp = path.with_name(f".{RESULTS_NAME}.merge.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)
    return path


MERGE_USAGE = """\
usage: python -m conformance.report merge DIR [DIR ...] [--out DIR] [--baseline PATH]

Join the report dirs of several shards of one run (CI jobs each running some of the
targets, each dir holding results.json and recordings/) into one results.json, with the
recordings copied and report.html written. A target may appear in one shard only.

  --out DIR          where the merged report goes (default reports/merged)
  --baseline PATH    gate the merged run against a previous results.json (docs/gate.md)

exit code: the merged run's own (0 passed, 1 a check failed, 5 no check ran, 6 could not be
judged), or 4 when the shards are invalid or conflict (nothing is written then).
"""


def merge_main(args: list[str]) -> int:
    import sys
    dirs, out, baseline = [], Path("reports/merged"), None
    rest = list(args)
    while rest:
        a = rest.pop(0)
        if a in ("-h", "--help"):
            print(MERGE_USAGE, end="")
            return 0
        if a in ("--out", "--baseline") or a.startswith(("--out=", "--baseline=")):
            name, _, value = a.partition("=")
            if not value:
                if not rest:
                    print(f"merge: {name} needs a value\n\n{MERGE_USAGE}", file=sys.stderr, end="")
                    return 4
                value = rest.pop(0)
            if name == "--out":
                out = Path(value)
            else:
                baseline = Path(value)
        elif a.startswith("-") and a != "-":
            print(f"merge: unknown option {a}\n\n{MERGE_USAGE}", file=sys.stderr, end="")
            return 4
        else:
            dirs.append(Path(a))
    if not dirs:
        print(f"merge: no shard dir given\n\n{MERGE_USAGE}", file=sys.stderr, end="")
        return 4
    try:
        merged = merge_dirs(dirs, out, baseline=baseline)
    except (MergeError, BaselineError) as e:
        print(f"merge: {e}", file=sys.stderr)
        return 4
    counts: dict[str, int] = {}
    for r in merged["results"]:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    print(f"merged {len(dirs)} shards: {len(merged['targets'])} targets, {len(merged['results'])} results "
          f"({', '.join(f'{v} {n}' for v, n in sorted(counts.items()))})")
    print(f"results: {out / RESULTS_NAME}   report: {out / 'report.html'}   exit code: {merged['exit_code']}")
    return merged["exit_code"]
