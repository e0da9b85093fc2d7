"""From the files in a report dir to what the HTML template shows.

Only ``results.json`` and the ``recordings/*.json`` it names are read, so a report can be
rebuilt offline from a copied report dir. Everything a server controls (status reason, header
names and values, body and wire bytes, and the observed texts that quote them) passes through
``text.visible`` or ``text.escape_bytes`` here and through Jinja2's autoescape in the template.
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from conformance.analysis.timing import analyse
from conformance.analysis.units import countdown_count
from conformance.report import text as tx
from conformance.report import timeline
from conformance.scenarios.browser import report_view
from conformance.wire.recording import Recording

VERDICTS = ("pass", "fail", "warn", "info", "skip", "error")
VERDICT_MEANING = {
    "pass": "met", "fail": "a MUST not met (or a SHOULD under --strict)", "warn": "a SHOULD not met",
    "info": "noted, not judged", "skip": "not applicable", "error": "could not be judged",
}
EXIT_MEANING = {0: "nothing failed or errored", 1: "a check failed", 2: "interrupted", 4: "usage error",
                5: "no check ran", 6: "a target could not be reached or judged"}
SCENARIO_ORDER = ("get", "get-http10", "head")
GROUP_ORDER = ("framing", "delivery", "browser", "client")   # the catalogue's order (docs/design.md)
RECORDING_HREF = re.compile(r"recordings/[A-Za-z0-9._-]+\.json")
WIRE_HEAD_ROWS, WIRE_TAIL_ROWS = 200, 20
WIRE_FIRST_BYTES, WIRE_LAST_BYTES = 40, 16
BODY_PREVIEW = 600


@dataclass
class ResultView:
    anchor: str
    target_index: int
    check: str
    level: str
    verdict: str
    spec: str
    title: str
    requirement: str
    expected: str
    observed: str
    metrics: list[tuple[str, str]]
    recording_href: str | None
    recording_anchor: str | None
    order: int = 0


@dataclass
class RecordingView:
    anchor: str
    href: str | None
    scenario: str
    load_error: str | None = None
    kind: str = "exchange"            # "exchange" (a Recording), or "other" (shown as its fields)
    url: str = ""
    method: str = ""
    request_version: str = ""
    error: str | None = None
    status_line: str = ""
    status: int | None = None
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    browser: dict | None = None       # a browser recording's view (conformance.scenarios.browser.report_view)
    notes: list[str] = field(default_factory=list)
    timeline: timeline.Timeline | None = None
    compact: timeline.Timeline | None = None
    wire_rows: list[dict] = field(default_factory=list)
    wire_omitted: int = 0
    wire_omitted_at: int = 0
    body_preview: str = ""
    body_tail: str = ""
    checks: list[ResultView] = field(default_factory=list)


@dataclass
class TargetView:
    index: int
    anchor: str
    id: str
    url: str
    profile: str
    interval: str
    server: str
    error: str
    stderr: str
    counts: dict
    results: list[ResultView] = field(default_factory=list)
    recordings: list[RecordingView] = field(default_factory=list)
    clients: dict | None = None       # the client matrix (``_client_matrix``)


@dataclass
class Report:
    suite: str
    started_at: str
    duration: str
    exit_code: int | None
    exit_meaning: str
    targets: list[TargetView]
    check_rows: list[dict]          # matrix rows: {"check", "level", "title", "group", "cells": [ResultView|None]}
    totals: dict
    overview: list[dict] = field(default_factory=list)  # per target: its GET stream at a glance
    app_tables: list[dict] = field(default_factory=list)  # --app: per (app, path), servers × fronts
    verdicts: tuple = VERDICTS
    verdict_meaning: dict = field(default_factory=lambda: dict(VERDICT_MEANING))


def _metric(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return tx.visible(v, 200)


def build(report_dir: Path) -> Report:
    report_dir = Path(report_dir)
    doc = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    results = [r for r in doc.get("results", []) if isinstance(r, dict)]
    target_entries = [t for t in doc.get("targets", []) if isinstance(t, dict)]
    ids = [str(t.get("id", "")) for t in target_entries]
    for r in results:  # a result for a target the list does not name still gets a column
        if str(r.get("target")) not in ids:
            ids.append(str(r.get("target")))
            target_entries.append({"id": str(r.get("target"))})

    targets: list[TargetView] = []
    for i, t in enumerate(target_entries):
        mine = [r for r in results if str(r.get("target")) == ids[i]]
        interval = t.get("interval_s")
        targets.append(TargetView(
            index=i, anchor=f"t{i}", id=tx.visible(ids[i], tx.ID_CAP), url=tx.visible(t.get("url") or "", tx.URL_CAP),
            profile=tx.visible(t.get("profile") or "", 40),
            interval=tx.ms(interval) if isinstance(interval, (int, float)) else "",
            server=tx.visible(t.get("server") or "", tx.HEADER_VALUE_CAP),
            error=tx.visible(t.get("error") or "", tx.TEXT_CAP, keep_newlines=True),
            stderr=tx.visible(t.get("server_stderr") or "", tx.STDERR_CAP, keep_newlines=True),
            counts=Counter(str(r.get("verdict")) for r in mine)))

    # results, in the order checks first appear, grouped by their prefix (framing., delivery., …)
    check_order: list[str] = []
    for r in results:
        if str(r.get("check")) not in check_order:
            check_order.append(str(r.get("check")))
    groups = list(GROUP_ORDER) + [g for g in dict.fromkeys(c.split(".")[0] for c in check_order) if g not in GROUP_ORDER]
    check_order.sort(key=lambda c: groups.index(c.split(".")[0]))
    cells: dict[tuple[int, str], ResultView] = {}
    rec_anchor: dict[tuple[int, str], str] = {}
    for ti, t in enumerate(targets):
        for href in dict.fromkeys(str(r.get("recording")) for r in results
                                  if str(r.get("target")) == ids[ti] and isinstance(r.get("recording"), str)
                                  and RECORDING_HREF.fullmatch(r["recording"])):
            rec_anchor[(ti, href)] = f"{t.anchor}-r{len(rec_anchor)}"
    for r in results:
        ti = ids.index(str(r.get("target")))
        cid = str(r.get("check"))
        href = r.get("recording")
        href = href if isinstance(href, str) and RECORDING_HREF.fullmatch(href) else None
        view = ResultView(
            anchor=f"{targets[ti].anchor}-c{check_order.index(cid)}", target_index=ti,
            check=tx.visible(cid, tx.ID_CAP), level=tx.visible(r.get("level", ""), 10),
            verdict=r.get("verdict") if r.get("verdict") in VERDICTS else "error",
            spec=tx.visible(r.get("spec", ""), 200), title=tx.visible(r.get("title", ""), 300),
            requirement=tx.visible(r.get("requirement", ""), tx.TEXT_CAP),
            expected=tx.visible(r.get("expected", ""), tx.TEXT_CAP),
            observed=tx.visible(r.get("observed", ""), tx.TEXT_CAP),
            metrics=[(tx.visible(k, 80), _metric(v)) for k, v in (r.get("metrics") or {}).items()][:40],
            recording_href=href, recording_anchor=rec_anchor.get((ti, href)) if href else None,
            order=check_order.index(cid))
        cells[(ti, cid)] = view
        targets[ti].results.append(view)
    for t in targets:
        t.results.sort(key=lambda v: v.order)

    rows = []
    for cid in check_order:
        sample = next(r for r in results if str(r.get("check")) == cid)
        rows.append({"check": tx.visible(cid, tx.ID_CAP), "level": tx.visible(sample.get("level", ""), 10),
                     "title": tx.visible(sample.get("title", ""), 300), "group": cid.split(".")[0],
                     "cells": [cells.get((ti, cid)) for ti in range(len(targets))]})

    # recordings, per target, in the order their checks name them
    for (ti, href), anchor in rec_anchor.items():
        entry = target_entries[ti]
        view = _recording_view(report_dir, href, anchor, entry, results, ids[ti])
        view.checks = [v for v in targets[ti].results if v.recording_href == href]
        targets[ti].recordings.append(view)
    for t in targets:  # the plain GET first: it is the stream most checks read
        t.recordings.sort(key=lambda v: SCENARIO_ORDER.index(v.scenario) if v.scenario in SCENARIO_ORDER
                          else len(SCENARIO_ORDER))

    for ti, t in enumerate(targets):
        t.clients = _client_matrix(report_dir, t)

    # at a glance: each target's plain GET (the stream the delivery checks read)
    overview = []
    for t in targets:
        rec = next((v for v in t.recordings if v.scenario == "get" and v.compact), None) or \
            next((v for v in t.recordings if v.compact and v.method.upper() != "HEAD"), None)
        overview.append({"target": t, "recording": rec,
                         "checks": [v for v in t.results if v.check.startswith("delivery.")
                                    and rec is not None and v.recording_href == rec.href][:4]})

    app_tables = _app_tables(target_entries, targets)

    exit_code = doc.get("exit_code")
    suite = doc.get("suite") or {}
    return Report(
        suite=tx.visible(f"{suite.get('name', 'http-streaming-conformance')} {suite.get('version', '')}".strip(), 120),
        started_at=tx.visible(doc.get("started_at", ""), 40),
        duration=f"{doc['duration_s']:.1f} s" if isinstance(doc.get("duration_s"), (int, float)) else "",
        exit_code=exit_code if isinstance(exit_code, int) else None,
        exit_meaning=EXIT_MEANING.get(exit_code, "") if isinstance(exit_code, int) else "",
        targets=targets, check_rows=rows, overview=overview, app_tables=app_tables,
        totals=Counter(v.verdict for v in cells.values()))


WORST_FIRST = ("error", "fail", "warn", "pass", "info", "skip")
FRONT_TITLES = {None: "the server alone", "nginx": "behind nginx (its defaults)",
                "nginx-unbuffered": "behind nginx, proxy_buffering off"}


def _app_tables(entries: list[dict], targets: list[TargetView]) -> list[dict]:
    """``--app`` targets as docs/matrix.md shows the reference app: one table per (app, path),
    a row per server, a column per front; each cell the target's worst verdict and the checks
    not met, linked to the target."""
    tables: dict[tuple[str, str], dict] = {}
    for entry, t in zip(entries, targets):
        app = entry.get("app")
        if not isinstance(app, dict):
            continue
        key = (str(app.get("name") or app.get("app")), str(app.get("path", "")))
        table = tables.setdefault(key, {"app": tx.visible(key[0], tx.ID_CAP), "path": tx.visible(key[1], tx.URL_CAP),
                                        "kind": tx.visible(str(app.get("kind", "")).upper(), 8),
                                        "servers": [], "fronts": [], "cells": {}})
        server, front = str(app.get("server", "")), app.get("front")
        front = None if front is None else str(front)
        if server not in table["servers"]:
            table["servers"].append(server)
        if front not in table["fronts"]:
            table["fronts"].append(front)
        verdicts = [v for v in WORST_FIRST if t.counts.get(v)]
        not_met = [r.check for r in t.results if r.verdict in ("error", "fail", "warn")]
        note = entry.get("skipped") or entry.get("error") or ""
        table["cells"][(server, front)] = {
            "anchor": t.anchor, "id": t.id, "verdict": verdicts[0] if verdicts else "skip",
            "not_met": not_met, "counts": t.counts,
            "note": tx.visible(str(note).strip().splitlines()[-1] if str(note).strip() else "", 300)}
    out = []
    for table in tables.values():
        table["fronts"].sort(key=lambda f: (f is not None, f or ""))
        table["front_titles"] = [tx.visible(FRONT_TITLES.get(f, f"behind {f}"), 80) for f in table["fronts"]]
        table["rows"] = [{"server": tx.visible(s, 40), "cells": [table["cells"].get((s, f)) for f in table["fronts"]]}
                         for s in table["servers"]]
        out.append(table)
    return out


RECORDING_FIELDS = {f.name for f in dataclasses.fields(Recording)}
CLIENT_EVENTS_SHOWN = 40


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _units_text(v) -> str:
    """A reader's units (conformance.analysis.llm_units) in one cell: count, first unit, gaps, merged."""
    m = dict(v.metrics)
    if not m.get("unit_count"):
        return ""
    def ms(key):
        try:
            return f"{float(m[key]) * 1000:.0f}"
        except (KeyError, TypeError, ValueError):
            return "–"
    return (f"{m['unit_count']} {m.get('unit_shape', '')}; first {ms('first_unit_s')} ms; gaps p50/p99/max "
            f"{ms('gap_p50_s')}/{ms('gap_p99_s')}/{ms('gap_max_s')} ms; merged {m.get('units_merged', '0')}")


def _client_matrix(report_dir: Path, t: TargetView) -> dict | None:
    """Which clients (httpx, requests, Node's fetch, Chromium's EventSource or fetch reader) read
    the target, and how late each event reached each caller behind the raw recorder: a row per
    client, a column per producer write. Read from the ``client`` part of each client check's
    (and the browser check's) recording."""
    rows, raw = [], None
    for v in t.results:
        if not v.check.startswith(("client.", "browser.")) or not v.recording_href:
            continue
        path = (report_dir / v.recording_href).resolve()
        if path.parent != (report_dir / "recordings").resolve():
            continue
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        client = d.get("client") if isinstance(d, dict) and isinstance(d.get("client"), dict) else None
        if client is None:
            continue
        times = client.get("event_times") if isinstance(client.get("event_times"), dict) else {}
        caller = [_num(x) for x in times.get("caller") or []][:CLIENT_EVENTS_SHOWN]
        ref = [_num(x) for x in times.get("raw") or []][:CLIENT_EVENTS_SHOWN]
        if raw is None and any(x is not None for x in ref):
            raw = ref
        lags = [None if c is None or i >= len(ref) or ref[i] is None else c - ref[i] for i, c in enumerate(caller)]
        known = [x for x in lags if x is not None]
        if client.get("skip"):
            read = "skipped: " + tx.visible(client["skip"], 200)
        elif d.get("error") or d.get("strict_error"):
            read = "no: " + tx.visible(d.get("error") or d.get("strict_error"), 200)
        else:
            read = "yes" if d.get("end") == "complete" else f"partly ({tx.visible(d.get('end') or '?', 40)})"
        rows.append({"check": v.check, "anchor": v.anchor, "verdict": v.verdict, "units": _units_text(v),
                     "client": tx.visible(client.get("name", ""), 80), "api": tx.visible(client.get("api", ""), 120),
                     "read": read,
                     "lags": [None if x is None else round(x * 1000) + 0 for x in lags],
                     "median": None if not known else round(sorted(known)[len(known) // 2] * 1000) + 0,
                     "max": None if not known else round(max(known) * 1000) + 0})
    if not rows:
        return None
    width = max([len(r["lags"]) for r in rows] + [len(raw or [])])
    for r in rows:
        r["lags"] += [None] * (width - len(r["lags"]))
    progressive = next((v for v in t.results if v.check == "delivery.progressive"), None)
    return {"rows": rows, "events": width, "raw_units": _units_text(progressive) if progressive else "",
            "raw": [None if x is None else round(x * 1000) for x in (raw or [])] + [None] * (width - len(raw or []))}


def _load_recording(report_dir: Path, href: str) -> Recording | dict:
    """A wire exchange as a ``Recording``; any other kind of recording (a browser's, say) as
    its plain dict."""
    base = (report_dir / "recordings").resolve()
    path = (report_dir / href).resolve()
    if path.parent != base:
        raise ValueError("the recording is not in the report dir's recordings/")
    d = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(d, dict):
        raise ValueError("the recording is not a JSON object")
    if not {"reads", "pieces", "headers"} <= d.keys():
        return d
    return Recording.from_dict({k: v for k, v in d.items() if k in RECORDING_FIELDS})


def _other_view(view: "RecordingView", d: dict) -> "RecordingView":
    """A recording that is not a wire exchange: its fields, as text."""
    view.kind = "other"
    view.scenario = tx.visible(d.get("scenario", view.scenario), tx.ID_CAP)
    view.url = tx.visible(d.get("url", ""), tx.URL_CAP)
    view.error = tx.visible(d["error"], tx.TEXT_CAP) if d.get("error") else None
    if str(d.get("scenario", "")).startswith("browser"):
        # times per group and the mid-way screenshot (a checked PNG data URI), not raw fields
        try:
            view.browser = report_view(d)
            return view
        except Exception:  # noqa: BLE001 - a malformed recording is shown as its fields
            view.browser = None
    for k, v in list(d.items())[:60]:
        if k in ("scenario", "url", "error") or v in (None, "", [], {}):
            continue
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        view.facts.append((tx.visible(k, 80), tx.visible(text, 600)))
    return view


def _schedule_params(entry: dict, rec: Recording, results: list[dict], target_id: str):
    """The producer's schedule as the checks judged it: profile, interval (s; None when none was
    given: the checks then judged by the schedule-free rule, and no schedule is drawn), count,
    expect_bursts."""
    profile = entry.get("profile") or "bytes"
    interval = entry.get("interval_s") if isinstance(entry.get("interval_s"), (int, float)) else None
    progressive = next((r for r in results if r.get("target") == target_id
                        and r.get("check") == "delivery.progressive"), None)
    expected = ((progressive or {}).get("metrics") or {}).get("expected_bursts")
    count = entry.get("count")
    if count is None and profile == "countdown":
        count = countdown_count(urlsplit(rec.url or entry.get("url") or "").path)
        if count is None and isinstance(expected, int) and expected >= 2:
            count = expected - 2
    expect_bursts = entry.get("expect_bursts")
    if expect_bursts is None and profile != "countdown" and isinstance(expected, int):
        expect_bursts = expected
    return profile, None if interval is None else float(interval), count, expect_bursts


def _recording_view(report_dir: Path, href: str, anchor: str, entry: dict, results: list[dict],
                    target_id: str) -> RecordingView:
    view = RecordingView(anchor=anchor, href=href if RECORDING_HREF.fullmatch(href) else None,
                         scenario=tx.visible(Path(href).stem, tx.ID_CAP))
    if view.href is None:
        view.load_error = "the recording's path is not a file in recordings/"
        return view
    try:
        rec = _load_recording(report_dir, href)
    except (OSError, ValueError, TypeError, KeyError) as e:
        view.load_error = tx.visible(f"could not read {href}: {e}", 400)
        return view
    if isinstance(rec, dict):
        return _other_view(view, rec)
    view.scenario = tx.visible(rec.scenario, tx.ID_CAP)
    view.url = tx.visible(rec.url, tx.URL_CAP)
    view.method = tx.visible(rec.method, 20)
    view.request_version = tx.visible(rec.request_version, 10)
    view.error = tx.visible(rec.error, tx.TEXT_CAP) if rec.error else None
    view.status = rec.status
    if rec.status is not None:
        view.status_line = tx.visible(f"HTTP/{rec.http_version or '?'} {rec.status} {rec.reason}", tx.REASON_CAP)
    view.request_headers = [(tx.visible(k, tx.HEADER_NAME_CAP), tx.visible(v, tx.HEADER_VALUE_CAP))
                            for k, v in rec.request_headers][:100]
    names = Counter(k.lower() for k, _ in rec.headers)
    view.headers = [{"n": i + 1, "name": tx.visible(k, tx.HEADER_NAME_CAP), "value": tx.visible(v, tx.HEADER_VALUE_CAP),
                     "dup": names[k.lower()] > 1} for i, (k, v) in enumerate(rec.headers[:300])]
    if len(rec.headers) > 300:
        view.notes.append(f"{len(rec.headers) - 300} more header lines not shown")
    view.trailers = [(tx.visible(k, tx.HEADER_NAME_CAP), tx.visible(v, tx.HEADER_VALUE_CAP)) for k, v in rec.trailers[:100]]
    view.facts = [(k, v) for k, v in (
        ("framing", tx.visible(rec.framing or "–", 40)),
        ("parser", tx.visible(rec.parser, 40)),
        ("connect (round trip)", tx.ms(rec.connect_s)),
        ("head at", tx.ms(rec.head_t)),
        ("end", tx.visible(f"{rec.end or '–'}" + (f" at {tx.ms(rec.end_t)}" if rec.end_t is not None else ""), 80)),
        ("body", f"{tx.size(rec.body_bytes)} in {sum(1 for p in rec.pieces if p.size)} pieces"),
        ("wire", f"{tx.size(rec.raw_bytes)} in {len(rec.reads)} reads"),
        ("after the end", tx.size(rec.after_end_bytes) if rec.after_end_bytes else ""),
        ("TLS", tx.visible(", ".join(f"{k} {v}" for k, v in (rec.tls or {}).items()), 200)),
    ) if v]
    if rec.strict_error:
        who = "h11 (strict)" if rec.parser in ("h11", "tolerant") else rec.parser
        view.notes.append(tx.visible(f"{who}: {rec.strict_error}", 400))
    dropped = [f"{n} {what} past the recorder's limit were counted but not kept"
               for n, what in ((getattr(rec, "reads_dropped", 0), "reads"), (getattr(rec, "pieces_dropped", 0), "body pieces")) if n]
    view.notes += dropped
    view.notes += [tx.visible(n, 400) for n in rec.framing_notes[:50]]

    # the timeline, from the suite's own delivery analysis
    profile, interval, count, expect_bursts = _schedule_params(entry, rec, results, target_id)
    if rec.reads or rec.pieces or rec.head_t is not None:
        delivery, schedule, note = None, [], ""
        if rec.method.upper() == "HEAD":
            note = "HEAD: no body is expected"
        else:
            try:
                delivery = analyse(rec, profile, interval, count, expect_bursts)
            except Exception as e:  # a report must render whatever the recording holds
                view.notes.append(tx.visible(f"delivery analysis failed: {e!r}", 400))
            if interval is None:   # no schedule was given: none is made up (the arrivals are drawn as they came)
                note = "no producer schedule: none was given (--interval); the checks judged the arrivals by the schedule-free rule"
            elif delivery is not None and delivery.group_times:
                schedule = [k * interval for k in range(len(delivery.group_times))]
            elif delivery is not None and delivery.span > 0:
                schedule = [k * interval for k in range(delivery.expected_groups)]
            elif delivery is not None and delivery.notes:
                note = f"schedule not drawn: {delivery.notes[-1]}"
            else:
                note = "the producer's schedule is unknown (bytes profile without --expect-bursts)"
        late_after = (delivery.rtt if delivery else 0.0) + max(interval or 0.0, 0.02)
        view.timeline = timeline.build(rec, delivery, schedule, late_after, timeline.FULL, note)
        view.timeline.caption = [tx.visible(c, 400) for c in view.timeline.caption]
        view.compact = timeline.build(rec, delivery, schedule, late_after, timeline.COMPACT)
        view.compact.caption = view.timeline.caption
        view.compact.summary = tx.visible(view.compact.summary, 400)

    # the wire log: every read with its first and last bytes
    raw = rec.raw_kept
    rows, offset = [], 0
    head_end = raw.find("\r\n\r\n")
    head_end = head_end + 4 if head_end >= 0 else None
    prev_t = None
    for i, r in enumerate(rec.reads):
        data = raw[offset:offset + r.size]
        kept = len(data)
        first = tx.escape_bytes(data, WIRE_FIRST_BYTES)
        last = tx.escape_bytes(data[-WIRE_LAST_BYTES:]) if kept > WIRE_FIRST_BYTES else ""
        if kept > WIRE_FIRST_BYTES + WIRE_LAST_BYTES:
            mid = f"… {kept - WIRE_FIRST_BYTES - WIRE_LAST_BYTES} B …"
        else:
            mid = ""
            if kept > WIRE_FIRST_BYTES:
                last = tx.escape_bytes(data[WIRE_FIRST_BYTES:])
        rows.append({"n": i + 1, "t": tx.ms(r.t), "dt": tx.ms(r.t - prev_t) if prev_t is not None else "",
                     "size": r.size, "offset": offset, "first": first, "mid": mid, "last": last,
                     "not_kept": kept < r.size,
                     "head": head_end is not None and offset < head_end <= offset + r.size})
        prev_t = r.t
        offset += r.size
    if len(rows) > WIRE_HEAD_ROWS + WIRE_TAIL_ROWS:
        view.wire_omitted = len(rows) - WIRE_HEAD_ROWS - WIRE_TAIL_ROWS
        view.wire_omitted_at = WIRE_HEAD_ROWS
        rows = rows[:WIRE_HEAD_ROWS] + rows[-WIRE_TAIL_ROWS:]
    view.wire_rows = rows
    view.body_preview = tx.escape_bytes(rec.body_kept, BODY_PREVIEW)
    if len(rec.body_kept) > BODY_PREVIEW:
        view.body_tail = tx.escape_bytes(rec.body_kept[-200:])
    return view
