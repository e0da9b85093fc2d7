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

from conformance.analysis.timing import Delivery
from conformance.report.text import clip, ms, size
from conformance.wire.recording import Recording

BUCKET_PX = 1.0                 # marks closer than this are merged
CHAR_W = 6.4                    # rough width of a marker label character


@dataclass(frozen=True)
class Layout:
    width: int
    left: int
    right: int
    mark_rows: tuple[float, ...]  # baselines for marker labels (staggered when close)
    producer: tuple[float, float]  # lane (y of top, height)
    body: tuple[float, float]
    reads: tuple[float, float] | None
    axis_y: float
    height: int
    ticks: int                     # about how many axis ticks
    labels: bool                   # lane labels, write numbers, marker labels

    @property
    def plot(self) -> float:
        return self.width - self.left - self.right


# WIDTH is about the width the figure is shown at, so its text stays at the page's size.
FULL = Layout(width=1280, left=130, right=24, mark_rows=(12, 25, 38), producer=(58, 26), body=(122, 50),
              reads=(192, 30), axis_y=234, height=258, ticks=8, labels=True)
COMPACT = Layout(width=640, left=8, right=16, mark_rows=(), producer=(6, 14), body=(44, 34), reads=None,
                 axis_y=86, height=108, ticks=5, labels=False)


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
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    lanes: list[Shape] = field(default_factory=list)
    caption: list[str] = field(default_factory=list)
    summary: str = ""            # one line for the at-a-glance figure
    description: str = ""        # for the svg's <desc> (screen readers)

    def add(self, *shapes: Shape) -> None:
        self.shapes.extend(shapes)


def _nice_step(span: float, target: int) -> float:
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


def build(rec: Recording, d: Delivery | None, schedule: list[float], late_after: float,
          layout: Layout = FULL, schedule_note: str = "") -> Timeline:
    """``schedule``: the producer's expected write-group times (empty when unknown, and then
    ``schedule_note`` says why); ``late_after``: a group arriving later than its scheduled time
    plus this counts as late. ``COMPACT`` draws only the schedule and the body, unlabelled."""
    L = layout
    LEFT, PLOT, PRODUCER, BODY, AXIS_Y = L.left, L.plot, L.producer, L.body, L.axis_y
    tl = Timeline(L.width, L.height)
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
    for lane, label in ((PRODUCER, "producer schedule"), (BODY, "body arrivals"), (L.reads, "wire reads")):
        if lane is None:
            continue
        y, h = lane
        tl.lanes.append(Shape("rect", "lane", LEFT, y, PLOT, h))
        if L.labels:
            tl.lanes.append(Shape("text", "lane-label", LEFT - 8, y + h / 2 + 4, text=label, anchor="end"))

    # axis
    step = _nice_step(tmax, L.ticks)
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
        labelled = L.labels and len(schedule) <= 16
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
    elif schedule_note and L.labels:
        tl.add(Shape("text", "note", LEFT + 8, py + ph / 2 + 4, text=clip(schedule_note, 150)))

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
    if not pieces and L.labels:
        tl.add(Shape("text", "note", LEFT + 8, by + bh / 2 + 4, text="no body bytes arrived"))

    # reads, size-scaled
    if L.reads is not None:
        _reads(tl, reads, x, L.reads, rec.end_t if rec.after_end_bytes else None)
        if not reads and L.labels:
            tl.add(Shape("text", "note", LEFT + 8, L.reads[0] + L.reads[1] / 2 + 4,
                         text=f"no wire reads recorded (the {rec.parser} client does not show them)"))
    if L.labels:
        _markers(tl, rec, pieces, x, L)
    else:  # compact: only where the first body byte came
        if pieces:
            tl.add(Shape("line", "marker m-first", x(pieces[0].t), PRODUCER[0], x2=x(pieces[0].t), y2=AXIS_Y,
                         title=f"first body byte {ms(pieces[0].t)}"))
    tl.caption = _caption(rec, d, schedule, pieces)
    tl.summary = _summary(rec, d, schedule, pieces)
    tl.description = "; ".join(tl.caption)
    return tl


def _reads(tl: Timeline, reads, x, lane, end_t: float | None) -> None:
    """Reads, size-scaled; those after the message ended (bytes that must not come) stand out."""
    ry, rh = lane
    during = [r for r in reads if end_t is None or r.t <= end_t]
    after = reads[len(during):]
    merged = [(m, "read") for m in _bucket([(r.t, r.size, r) for r in during], x)]
    merged += [(m, "read after-end") for m in _bucket([(r.t, r.size, r) for r in after], x)]
    biggest = max((n for (_, n, _), _ in merged), default=0)
    for (px, n, items), cls in merged:
        h = _height(n, biggest, rh)
        tip = (f"{ms(items[0].t)}: recv of {size(n)}" if len(items) == 1
               else f"{ms(items[0].t)}–{ms(items[-1].t)}: {len(items)} reads, {size(n)}")
        if cls != "read":
            tip += ", after the message had ended"
        tl.add(Shape("rect", cls, px - 1, ry + rh - h, 2, h, title=tip))


def _markers(tl: Timeline, rec: Recording, pieces, x, L: Layout) -> None:
    """Markers across the lanes; markers at the same pixel share one label."""
    LEFT, PLOT, MARK_ROWS, AXIS_Y = L.left, L.plot, L.mark_rows, L.axis_y
    first_body = pieces[0].t if pieces else None
    marks = [(0.0, "request", "m-request"), (rec.head_t, "head", "m-head"), (first_body, "first byte", "m-first"),
             (rec.end_t, f"end: {rec.end}" if rec.end else "end", "m-end")]
    clusters: list[list] = []
    for t, label, cls in marks:
        if t is None:
            continue
        if clusters and abs(x(t) - x(clusters[-1][0])) < 2:
            clusters[-1][1].append(label)
            clusters[-1][2].append(cls)
        else:
            clusters.append([t, [label], [cls]])
    row_end = [-1e9] * len(MARK_ROWS)       # the right end of the last label in each row
    for t, labels, classes in clusters:
        px = x(t)
        text = f"{' + '.join(labels)} {ms(t)}"
        width = CHAR_W * len(text)
        anchor = "end" if px + width > LEFT + PLOT else "start"
        x0 = px - width if anchor == "end" else px
        row = next((i for i, end in enumerate(row_end) if x0 > end + 8), len(MARK_ROWS) - 1)
        row_end[row] = x0 + width
        cls = classes[-1]
        tl.add(Shape("line", f"marker {cls}", px, MARK_ROWS[row] + 3, x2=px, y2=AXIS_Y, title=text))
        tl.add(Shape("text", f"marker-label {cls}", px + (3 if anchor == "start" else -3), MARK_ROWS[row],
                     text=text, anchor=anchor))


def _axis_label(t: float, step: float) -> str:
    if t == 0:
        return "0"
    if step >= 0.1:
        return f"{round(t, 6):g} s"
    return f"{round(t * 1000, 6):g} ms"


def _summary(rec: Recording, d: Delivery | None, schedule: list[float], pieces) -> str:
    if not pieces:
        return f"no body bytes arrived ({rec.end or 'no end'})"
    parts = []
    if d and d.group_times:
        carrying = sum(1 for b in d.bursts if b.groups)
        parts.append(f"{d.expected_groups} write groups arrived in {carrying} burst{'' if carrying == 1 else 's'}")
    elif d:
        parts.append(f"{len(d.bursts)} burst{'' if len(d.bursts) == 1 else 's'}")
    parts.append(f"first body byte {ms(pieces[0].t)}")
    if schedule and len(schedule) > 1:
        mid = schedule[-1] / 2 + (d.rtt if d else 0.0)
        total = sum(p.size for p in pieces)
        parts.append(f"{100 * sum(p.size for p in pieces if p.t <= mid) / total:.0f}% of the body by mid-schedule")
    return " · ".join(parts)


def _caption(rec: Recording, d: Delivery | None, schedule: list[float], pieces) -> list[str]:
    out: list[str] = []
    if d and d.bursts:
        if d.group_times:
            carrying = [b for b in d.bursts if b.groups]
            largest = max((len(b.groups) for b in carrying), default=0)
            out.append(f"{len(carrying)} burst{'' if len(carrying) == 1 else 's'} for the producer's {d.expected_groups} write groups "
                       f"(the largest carries {largest})")
        else:
            out.append(f"{len(d.bursts)} burst{'' if len(d.bursts) == 1 else 's'}")
    out.append(f"{len(pieces)} body pieces, {size(rec.body_bytes)}; {len(rec.reads)} reads, {size(rec.raw_bytes)} on the wire")
    if pieces:
        out.append(f"first body byte {ms(pieces[0].t)}, last {ms(pieces[-1].t)}")
    if schedule and pieces and len(schedule) > 1:
        mid = schedule[-1] / 2 + (d.rtt if d else 0.0)
        by_mid = sum(p.size for p in pieces if p.t <= mid)
        total = sum(p.size for p in pieces)
        out.append(f"{100 * by_mid / total:.0f}% of the body had arrived by mid-schedule ({ms(mid)})")
    dropped = getattr(rec, "reads_dropped", 0) or getattr(rec, "pieces_dropped", 0)
    if dropped:
        out.append("the recording kept only its first reads and pieces: the drawing stops where they do")
    if rec.end:
        out.append(f"ended: {rec.end}" + (f" at {ms(rec.end_t)}" if rec.end_t is not None else ""))
    if rec.after_end_bytes:
        out.append(f"{size(rec.after_end_bytes)} arrived after the message had ended")
    if d:
        out.extend(d.notes)
    return out
