"""The geometry of a recording's timeline: plain shapes the SVG template draws.

Lanes, top to bottom: the producer's expected schedule (one mark per write group), the body
pieces as they arrived (bar height grows with size, bursts shaded behind, each countdown group
linked from its scheduled write to its arrival), and the wire reads. Vertical markers show the
request (t = 0), the head, the first body byte and the end. A stream that is held shows at one
look: the links fan out to the right and the body bars pile up at the end.

All text in the result is plain strings; the template autoescapes it. Many marks are merged
per pixel column, so a multi-gigabyte recording still draws a few thousand shapes at most.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from conformance.recording import Recording
from conformance.report.text import ms, size
from conformance.timing import Delivery

WIDTH = 1000
LEFT, RIGHT = 150, 24
PLOT = WIDTH - LEFT - RIGHT
# lane geometry (y of top, height)
MARK_ROWS = (13, 27)           # baselines for marker labels (staggered when close)
PRODUCER = (44, 26)
BODY = (112, 50)
READS = (184, 34)
AXIS_Y = 230
HEIGHT = 256
BUCKET_PX = 1.0                 # marks closer than this are merged


@dataclass
class Shape:
    kind: str                   # rect | line | text | circle
    cls: str
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0
    x2: float = 0
    y2: float = 0
    r: float = 0
    text: str = ""
    title: str = ""
    anchor: str = "start"


@dataclass
class Timeline:
    width: int = WIDTH
    height: int = HEIGHT
    shapes: list[Shape] = field(default_factory=list)
    lanes: list[Shape] = field(default_factory=list)
    caption: list[str] = field(default_factory=list)
    description: str = ""        # for the svg's <desc> (screen readers)

    def add(self, *shapes: Shape) -> None:
        self.shapes.extend(shapes)


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _bucket(points: list[tuple[float, int, object]], x) -> list[tuple[float, int, list]]:
    """Merge (t, size, item) points that land on the same pixel column: (x, total size, items)."""
    out: list[tuple[float, int, list]] = []
    for t, n, item in points:
        px = x(t)
        if out and px - out[-1][0] < BUCKET_PX:
            out[-1][1] += n
            out[-1][2].append(item)
        else:
            out.append([px, n, [item]])
    return [tuple(b) for b in out]


def _height(n: int, biggest: int, lane_h: float) -> float:
    if biggest <= 0:
        return 2.0
    return max(2.0, math.sqrt(n / biggest) * lane_h)


def build(rec: Recording, d: Delivery | None, schedule: list[float], late_after: float) -> Timeline:
    """``schedule``: the producer's expected write-group times (empty when unknown);
    ``late_after``: a group arriving later than its scheduled time plus this counts as late."""
    tl = Timeline()
    pieces = [p for p in rec.pieces if p.size]
    reads = list(rec.reads)
    times = [0.0] + [t for t in (rec.head_t, rec.end_t) if t is not None]
    times += [p.t for p in pieces[-1:]] + [r.t for r in reads[-1:]] + schedule[-1:]
    if d and d.group_times:
        times += [t for t in d.group_times if t is not None]
    tmax = max(times) * 1.04 or 0.001

    def x(t: float) -> float:
        return LEFT + max(0.0, min(t, tmax)) / tmax * PLOT

    # lane backgrounds and labels
    for (y, h), label in ((PRODUCER, "producer writes (expected)"), (BODY, "body as it arrived"),
                          (READS, "reads on the wire")):
        tl.lanes.append(Shape("rect", "lane", LEFT, y, PLOT, h))
        tl.lanes.append(Shape("text", "lane-label", LEFT - 8, y + h / 2 + 4, text=label, anchor="end"))

    # axis
    step = _nice_step(tmax)
    tl.add(Shape("line", "axis", LEFT, AXIS_Y, x2=LEFT + PLOT, y2=AXIS_Y))
    k = 0
    while k * step <= tmax + 1e-12:
        t = k * step
        tl.add(Shape("line", "tick", x(t), AXIS_Y, x2=x(t), y2=AXIS_Y + 4))
        tl.add(Shape("line", "grid", x(t), PRODUCER[0], x2=x(t), y2=AXIS_Y))
        tl.add(Shape("text", "tick-label", x(t), AXIS_Y + 16, text=_axis_label(t, step), anchor="middle"))
        k += 1

    # bursts behind the body
    if d:
        for i, b in enumerate(d.bursts):
            x0, x1 = x(b.start), x(b.end)
            groups = f"; producer groups {', '.join(map(str, b.groups))}" if b.groups else ""
            tl.add(Shape("rect", "burst" + (" alt" if i % 2 else ""), x0 - 2, BODY[0] - 6, max(4.0, x1 - x0 + 4),
                         BODY[1] + 10, title=f"burst {i + 1}: {size(b.size)} from {ms(b.start)} to {ms(b.end)}{groups}"))

    # the producer's schedule and, for the countdown, each group's journey to its arrival
    py, ph = PRODUCER
    if schedule:
        arrivals = d.group_times if d and d.group_times else []
        labelled = len(schedule) <= 16
        for k, t in enumerate(schedule):
            got = arrivals[k] if k < len(arrivals) else None
            if arrivals:
                if got is None:
                    state, what = "missing", "not found in the body"
                else:
                    lag = got - t
                    state = "late" if lag > late_after else "ontime"
                    what = f"arrived at {ms(got)} ({ms(lag)} after its write)"
                tip = f"write group {k}: scheduled at {ms(t)}; {what}"
            else:
                state, tip = "sched", f"write {k + 1}: expected at {ms(t)}"
            tl.add(Shape("rect", f"write {state}", x(t) - 2, py + 4, 4, ph - 8, title=tip))
            if labelled:
                tl.add(Shape("text", "write-label", x(t), py - 3, text=str(k), anchor="middle"))
            if got is not None:
                tl.add(Shape("line", f"link {state}", x(t), py + ph, x2=x(got), y2=BODY[0] - 6, title=tip))
    else:
        tl.add(Shape("text", "note", LEFT + 8, py + ph / 2 + 4,
                     text="the producer's schedule is unknown (bytes profile without --expect-bursts)"))

    # body pieces, size-scaled
    by, bh = BODY
    merged = _bucket([(p.t, p.size, p) for p in pieces], x)
    biggest = max((n for _, n, _ in merged), default=0)
    for px, n, items in merged:
        h = _height(n, biggest, bh)
        first, last = items[0], items[-1]
        if len(items) == 1:
            chunk = ", a whole chunk" if first.chunk_start and first.chunk_end else ""
            tip = f"{ms(first.t)}: {size(n)} of body at offset {first.offset}{chunk}"
        else:
            tip = f"{ms(first.t)}–{ms(last.t)}: {len(items)} pieces, {size(n)} of body from offset {first.offset}"
        tl.add(Shape("rect", "piece", px - 1.5, by + bh - h, 3, h, title=tip))
    if not pieces:
        tl.add(Shape("text", "note", LEFT + 8, by + bh / 2 + 4, text="no body bytes arrived"))

    # reads, size-scaled
    ry, rh = READS
    merged = _bucket([(r.t, r.size, r) for r in reads], x)
    biggest = max((n for _, n, _ in merged), default=0)
    for px, n, items in merged:
        h = _height(n, biggest, rh)
        tip = (f"{ms(items[0].t)}: recv of {size(n)}" if len(items) == 1
               else f"{ms(items[0].t)}–{ms(items[-1].t)}: {len(items)} reads, {size(n)}")
        tl.add(Shape("rect", "read", px - 1, ry + rh - h, 2, h, title=tip))

    # markers across the lanes
    first_body = pieces[0].t if pieces else None
    marks = [(0.0, "request sent", "m-request"), (rec.head_t, "head", "m-head"),
             (first_body, "first byte", "m-first"),
             (rec.end_t, f"end: {rec.end}" if rec.end else "end", "m-end")]
    last_x = {0: -1e9, 1: -1e9}
    for t, label, cls in marks:
        if t is None:
            continue
        px = x(t)
        row = 0 if px - last_x[0] > 90 else 1 if px - last_x[1] > 90 else 0
        last_x[row] = px
        anchor = "end" if px > LEFT + PLOT - 80 else "start"
        tl.add(Shape("line", f"marker {cls}", px, MARK_ROWS[row] + 3, x2=px, y2=AXIS_Y, title=f"{label} at {ms(t)}"))
        tl.add(Shape("text", f"marker-label {cls}", px + (3 if anchor == "start" else -3), MARK_ROWS[row],
                     text=f"{label} {ms(t)}", anchor=anchor))

    tl.caption = _caption(rec, d, schedule, pieces)
    tl.description = "; ".join(tl.caption)
    return tl


def _axis_label(t: float, step: float) -> str:
    if t == 0:
        return "0"
    if step >= 1:
        return f"{t:g} s"
    if step >= 0.1:
        return f"{t:.1f} s"
    digits = 0 if step >= 0.001 else 1
    return f"{t * 1000:.{digits}f} ms"


def _caption(rec: Recording, d: Delivery | None, schedule: list[float], pieces) -> list[str]:
    out: list[str] = []
    if d and d.bursts:
        if d.group_times:
            carrying = [b for b in d.bursts if b.groups]
            largest = max((len(b.groups) for b in carrying), default=0)
            out.append(f"{len(carrying)} bursts for the producer's {d.expected_groups} write groups "
                       f"(the largest carries {largest})")
        else:
            out.append(f"{len(d.bursts)} bursts")
    out.append(f"{len(pieces)} body pieces, {size(rec.body_bytes)}; {len(rec.reads)} reads, {size(rec.raw_bytes)} on the wire")
    if pieces:
        out.append(f"first body byte {ms(pieces[0].t)}, last {ms(pieces[-1].t)}")
    if schedule and pieces and len(schedule) > 1:
        mid = schedule[-1] / 2 + (d.rtt if d else 0.0)
        by_mid = sum(p.size for p in pieces if p.t <= mid)
        total = sum(p.size for p in pieces)
        out.append(f"{100 * by_mid / total:.0f}% of the body had arrived by mid-schedule ({ms(mid)})")
    if rec.end:
        out.append(f"ended: {rec.end}" + (f" at {ms(rec.end_t)}" if rec.end_t is not None else ""))
    if d:
        out.extend(d.notes)
    return out
