"""The ``chain`` scenario behind ``delivery.chain``: the origin and the chain in front of it,
recorded at the same time with the same request, their events matched by content.

``--reference ORIGIN_URL`` (``reference`` in a targets file) names the origin a target's chain
(proxy, CDN, middleware) forwards to. The scenario opens four connections, all written at the
same moment (a barrier after connecting): the origin and the target asked with the recorder's
``Accept-Encoding: identity``, and both again with the codings a browser accepts
(``Accept-Encoding: gzip, deflate, br, zstd``), so a chain that
holds only when it compresses is seen too. Every recording keeps the monotonic time of its
t = 0, so the two sides of a pair share one clock.

The analysis (``compare``) finds the same events in both bodies (decoded read by read when
content-coded, ``codings.decoded``): the probe's writes by their sequence numbers; countdown
groups by their content; SSE events and NDJSON lines by their text (or, when the two copies
differ, as dynamic content does, by position); ``bytes`` by the offsets where the origin's
bursts end. For each event it measures how much later it reached the client through the chain
than directly (``delay``). When both copies are the probe's, the later production of the
chain's copy (its request reached the origin a little later, read from the in-band timestamps
on the origin's one clock) is taken off, leaving what the chain *held* it. Nothing here judges;
``conformance/checks/test_chain.py`` does.

The reference is kept on the target as ``target.reference`` (``reference_of``), set by the
plugin and the targets-file reader.
"""
from __future__ import annotations

import bisect
import statistics
import threading
import time
from dataclasses import dataclass, field, replace

import h11

from conformance.analysis.target import profile_of
from conformance.analysis.timing import Margins, split_bursts
from conformance.analysis.units import (
    body_arrivals,
    countdown_count,
    countdown_group_offsets,
    ndjson_line_ends,
    sse_event_ends,
)
from conformance.probe import ProbeSchedule, recognise
from conformance.scenarios.base import Context, Scenario, register
from conformance.scenarios.conditions import _Primary
from conformance.wire.codings import BROWSER_ACCEPT_ENCODING, content_codings, decoded
from conformance.wire.recorder import BadURL, Exchange, _connect, _exchange, _request, parse_url, request_headers
from conformance.wire.recording import Recording, redact

HINT = ("give the origin behind the chain with --reference ORIGIN_URL (or reference = \"...\" in a targets "
        "file); mount the probe (conformance.probe) at the origin to judge the chain exactly")
# Asked twice: as the recorder asks (identity), and with the codings a browser accepts.
CODINGS = (("identity", ()), ("compressed", (("Accept-Encoding", BROWSER_ACCEPT_ENCODING),)))
CLOCK_SANITY_S = 5.0   # probe timestamps of the two copies further apart than this: not one clock


def reference_of(target) -> str | None:
    return getattr(target, "reference", None)


def with_reference(target, url: str | None):
    """``target`` with its origin (a ``dataclasses.replace`` variant); ``BadURL`` when the URL
    cannot be recorded."""
    if url:
        parse_url(url)
    return replace(target, reference=url)


# --- recording ----------------------------------------------------------------------------------

@dataclass
class Leg:
    role: str                 # "origin" or "target"
    coding: str               # what was asked for: "identity" or "compressed"
    rec: Recording
    t0: float | None = None   # monotonic time of the recording's t = 0 (None: no request sent)


@dataclass
class Chain(_Primary):
    scenario: str
    legs: list[Leg]
    reference: str | None = None
    skip: str | None = None

    @property
    def primary(self) -> Recording:
        return self.legs[min(1, len(self.legs) - 1)].rec   # the target, asked with identity

    @property
    def error(self):
        if self.skip:
            return None
        for leg in self.legs:
            if leg.rec.error:
                who = f"the origin (--reference {self.reference})" if leg.role == "origin" else "the target"
                return f"{who}, {leg.coding}: {leg.rec.error}"
        return None

    def pair(self, coding: str) -> tuple[Leg, Leg]:
        legs = {(leg.role, leg.coding): leg for leg in self.legs}
        return legs[("origin", coding)], legs[("target", coding)]


def record_at(url: str, exchange: Exchange, barrier: threading.Barrier, *, timeout: float, deadline: float,
              insecure: bool = False, secret_headers=()) -> tuple[Recording, float | None]:
    """``recorder.record``, with the request written when every party of ``barrier`` has
    connected; returns the recording and the monotonic time of its t = 0."""
    ep = parse_url(url)
    headers = request_headers(ep, exchange)
    rec = Recording(scenario=exchange.scenario, url=url, method=exchange.method,
                    request_version=exchange.http_version, request_headers=redact(headers, secret_headers))
    sock = None
    try:
        wire, conn = _request(ep, exchange, headers)
    except (h11.LocalProtocolError, UnicodeError) as e:
        rec.error = f"the request cannot be written: {e}"
    else:
        sock = _connect(ep, rec, min(timeout, deadline), insecure)
    try:
        barrier.wait(timeout=min(timeout, deadline))
    except threading.BrokenBarrierError:
        pass
    if sock is None:
        return rec, None
    try:
        t0 = time.monotonic()
        _exchange(sock, exchange, wire, conn, rec, timeout, t0 + deadline, None)
    finally:
        sock.close()
    return rec, t0


def _without_reference(ctx: Context) -> Chain | None:
    """The chain's record when there is no origin to compare with (no --reference): a skip."""
    if reference_of(ctx.target):
        return None
    return Chain("chain", [Leg("target", "identity", Recording("chain", ctx.url or ""))], skip=f"no reference: {HINT}")


def _chain(ctx: Context) -> Chain:
    skipped = _without_reference(ctx)
    if skipped is not None:
        return skipped
    ref = reference_of(ctx.target)
    jobs = [(role, coding, url, headers) for coding, headers in CODINGS
            for role, url in (("origin", ref), ("target", ctx.url))]
    barrier = threading.Barrier(len(jobs))
    legs: list[Leg | None] = [None] * len(jobs)

    def run(i, role, coding, url, headers):
        # the target's --header values and --watch, for both sides: the same request
        ex = ctx.exchange(Exchange(f"chain-{role}" + ("" if coding == "identity" else f"-{coding}"),
                                   headers=list(headers)))
        try:
            rec, t0 = record_at(url, ex, barrier, timeout=ctx.timeout, deadline=ctx.deadline,
                                insecure=ctx.target.insecure, secret_headers=ctx.secret_headers)
        except BadURL as e:
            barrier.abort()
            rec, t0 = Recording(ex.scenario, url, error=str(e)), None
        except Exception as e:  # noqa: BLE001 - a bug of ours must not end the run; say what it was
            barrier.abort()
            rec, t0 = Recording(ex.scenario, url, error=f"recorder error: {type(e).__name__}: {e}"), None
        legs[i] = Leg(role, coding, rec, t0)

    threads = [threading.Thread(target=run, args=(i, *job), daemon=True, name=f"chain-{i}")
               for i, job in enumerate(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return Chain("chain", legs, ref)


register(Scenario("chain", "the origin (--reference) and the target recorded at once, identity and compressed", _chain,
                  connections=2, skip=_without_reference))


# --- comparing the two ------------------------------------------------------------------------

@dataclass
class Event:
    key: object
    label: str
    origin_t: float               # on the common (monotonic) clock
    target_t: float | None        # None: never reached the client through the chain
    delay: float | None = None    # target_t - origin_t
    held: float | None = None     # delay less the later production of the chain's copy (probe)


@dataclass
class Comparison:
    coding: str                   # asked for: identity or compressed
    profile: str
    interval: float
    match: str                    # how events were matched
    events: list[Event]
    target_found: int
    limit: float                  # the most an event may be held (seconds)
    allowed_merge: int            # the most origin bursts one client burst may carry
    encodings: tuple[str, str] = ("identity", "identity")   # Content-Encoding of origin, target
    origin_bursts: int = 0
    target_bursts: int = 0
    merged: int = 0               # the most origin bursts that one client burst carried
    merged_at: float | None = None   # when that burst arrived (target's recording clock)
    production_s: float | None = None   # how much later the chain's copy was produced (probe)
    target_ended: bool = True
    target_end: float | None = None   # when the target's recording ended (common clock)
    notes: list[str] = field(default_factory=list)

    @property
    def matched(self) -> list[Event]:
        return [e for e in self.events if e.target_t is not None]

    @property
    def missing(self) -> list[Event]:
        return [e for e in self.events if e.target_t is None]

    @property
    def held_back(self) -> list[Event]:
        """Events the origin sent, more than the limit before the target's recording ended
        unfinished (watched, timed out), that had not come through the chain by then."""
        if self.target_ended or self.target_end is None:
            return []
        return [e for e in self.missing if e.origin_t + self.limit < self.target_end]

    def held(self) -> list[float]:
        return [e.held for e in self.matched]

    @property
    def worst(self) -> Event | None:
        return max(self.matched, key=lambda e: e.held, default=None)

    @property
    def ok(self) -> bool:
        if not self.matched:
            return False
        if self.held_back:   # still held when the recording ended
            return False
        return self.worst.held <= self.limit and self.merged <= self.allowed_merge


def _plain(rec: Recording) -> tuple[Recording | None, str, list[str]]:
    """The recording with its content decoded read by read (``codings.decoded``), its codings,
    and notes (None: it cannot be decoded here)."""
    codings = content_codings(rec)
    if not codings:
        return rec, "identity", []
    out, notes = decoded(rec)
    if rec.body_bytes and not out.body_bytes and notes:
        return None, ", ".join(codings), notes
    return out, ", ".join(codings), notes


def _time_of(rec: Recording, starts: list[int], offset: int) -> float | None:
    i = bisect.bisect_right(starts, offset) - 1
    if i < 0:
        return None
    p = rec.pieces[i]
    return p.t if offset < p.offset + p.size else None


def _records(body: bytes, ends: list[int]) -> list[bytes]:
    out, start = [], 0
    for end in ends:
        out.append(body[start:end + 1].strip())
        start = end + 1
    return out


def _keyed(texts: list[bytes]) -> list[tuple[bytes, int]]:
    seen: dict[bytes, int] = {}
    out = []
    for text in texts:
        seen[text] = seen.get(text, 0) + 1
        out.append((text, seen[text]))
    return out


def _events(o: Recording, t: Recording, profile: str, count: int | None, po: ProbeSchedule | None,
            pt: ProbeSchedule | None, gap: float):
    """(how matched, [(key, label, origin offset)], {key: target offset}, notes)."""
    ob, tb = o.body, t.body
    if po and pt and (po.profile, po.count) == (pt.profile, pt.count):
        return ("the probe's sequence numbers", [(w.seq, f"write {w.seq}", w.end) for w in po.writes],
                {w.seq: w.end for w in pt.writes}, [])
    if profile == "countdown" and count:
        oo, to = countdown_group_offsets(ob, count), countdown_group_offsets(tb, count)
        return ("countdown groups", [(k, f"group {k}", off) for k, off in enumerate(oo) if off is not None],
                {k: off for k, off in enumerate(to) if off is not None}, [])
    if profile in ("sse", "ndjson"):
        what = "event" if profile == "sse" else "line"
        if profile == "sse":
            oe, te = sse_event_ends(ob), sse_event_ends(tb)
        else:
            oe = ndjson_line_ends(ob, o.end in ("complete", "closed"))
            te = ndjson_line_ends(tb, t.end in ("complete", "closed"))
        ok, tk = _keyed(_records(ob, oe)), _keyed(_records(tb, te))
        tmap = dict(zip(tk, te))
        if sum(k in tmap for k in ok) >= max(1, (len(ok) + 1) // 2):
            return (f"{what} content", [(k, f"{what} {i}", off) for i, (k, off) in enumerate(zip(ok, oe))], tmap, [])
        return (f"{what} position", [(i, f"{what} {i}", off) for i, off in enumerate(oe)], dict(enumerate(te)),
                [f"the two copies' {what}s differ (dynamic content?): matched by position"])
    # bytes: the offsets where the origin's bursts end
    offs, total = [], 0
    for b in split_bursts(body_arrivals(o), gap):
        total += b.size
        offs.append(total - 1)
    offs = [x for x in offs if x < len(ob)]
    return ("byte offsets", [(x, f"byte {x}", x) for x in offs], {x: x for x in offs if x < len(tb)}, [])


def compare(origin: Leg, target: Leg, profile: str | None, count: int | None,
            interval: float | None) -> Comparison | str:
    """The per-event comparison of one pair, or why it cannot be made. ``profile`` None: from
    the origin's response; ``interval`` None: the probe's, else the origin's median gap."""
    o, ocod, onotes = _plain(origin.rec)
    t, tcod, tnotes = _plain(target.rec)
    if o is None or t is None:
        return f"the {'origin' if o is None else 'target'}'s Content-Encoding: " + "; ".join(onotes if o is None else tnotes)
    po, pt = recognise(o.body), recognise(t.body)
    notes = onotes + tnotes
    if po is not None:
        profile, count = po.profile, po.count
        interval = po.interval if po.interval > 0 else interval
    profile = profile or profile_of(o)
    if profile == "countdown" and not count:
        count = countdown_count(origin.rec.url.split("?")[0])
    rtt = max(origin.rec.connect_s or 0.0, target.rec.connect_s or 0.0)
    # bytes without a known interval: the origin's bursts are split at the noise window
    margins = Margins(interval or 2 * max(0.1, 2 * rtt), rtt)
    how, okeys, tmap, more = _events(o, t, profile, count, po, pt, margins.burst_gap)
    notes += more
    if not okeys:
        return f"no {profile} events were found in the origin's body ({origin.rec.body_bytes} bytes)"
    ostarts, tstarts = [p.offset for p in o.pieces], [p.offset for p in t.pieces]
    if not interval:   # the origin's own pace: the median gap between its events
        times = sorted(x for x in (_time_of(o, ostarts, off) for _, _, off in okeys) if x is not None)
        gaps = [b - a for a, b in zip(times, times[1:]) if b - a > 0]
        interval = statistics.median(gaps) if gaps else 1.0
        notes.append(f"no interval given: the origin's median gap between events, {interval * 1000:.0f} ms, stands for it")
        margins = Margins(interval, rtt)
    pwrites = {w.seq: w.t for w in pt.writes} if pt else {}
    owrites = {w.seq: w.t for w in po.writes} if po else {}
    events = []
    for key, label, off in okeys:
        ot = _time_of(o, ostarts, off)
        if ot is None:
            continue
        tt = _time_of(t, tstarts, tmap[key]) if key in tmap else None
        e = Event(key, label, origin.t0 + ot, None if tt is None else target.t0 + tt)
        if e.target_t is not None:
            e.delay = e.target_t - e.origin_t
            e.held = e.delay
        events.append(e)
    c = Comparison(target.coding, profile, interval, how, events, len(tmap),
                   limit=max(0.5 * interval, margins.scheduling_noise + 2 * rtt),
                   allowed_merge=margins.groups_per_burst(), encodings=(ocod, tcod), notes=notes,
                   target_ended=target.rec.end in ("complete", "closed"),
                   target_end=None if target.rec.end_t is None else target.t0 + target.rec.end_t)
    # The probe: take off how much later the chain's copy was made (both on the origin's clock).
    lags = [pwrites[e.key] - owrites[e.key] for e in c.matched if e.key in pwrites and e.key in owrites]
    if how.startswith("the probe") and lags:
        if all(abs(x) <= CLOCK_SANITY_S for x in lags):
            c.production_s = statistics.median(lags)
            for e in c.matched:
                e.held = e.delay - (pwrites[e.key] - owrites[e.key])
        else:
            c.notes.append("the two copies' probe timestamps are over 5 s apart (not one server clock?): "
                           "judged on arrival times alone")
    _bursts(c, margins.burst_gap, target.t0)
    return c


def _bursts(c: Comparison, gap: float, target_t0: float) -> None:
    """How many of the origin's bursts each burst through the chain carries."""
    origin_burst, n, last = {}, 0, None
    for e in c.events:
        if last is None or e.origin_t - last >= gap:
            n += 1
        origin_burst[id(e)] = n
        last = e.origin_t
    c.origin_bursts = n
    last, current, start = None, set(), 0.0   # start: the burst being gathered's first arrival
    arrived = sorted(c.matched, key=lambda e: e.target_t)
    for e in arrived + [None]:
        if e is None or (last is not None and e.target_t - last >= gap):
            if current:
                c.target_bursts += 1
                if len(current) > c.merged:
                    c.merged, c.merged_at = len(current), start - target_t0
            current = set()
        if e is None:
            break
        if not current:
            start = e.target_t
        current.add(origin_burst[id(e)])
        last = e.target_t
