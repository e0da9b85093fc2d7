"""Scenarios must not poison each other: waiting for a quiet server between them.

A server that serves one request at a time, or keeps producing for a client that left (a
single-threaded server, a blocking generator under an ASGI bridge), is still busy with the
suite's own streams after a scenario that opened many of them (``delivery.concurrent``) or
abandoned one (``delivery.disconnect``, a stream closed at the watch or the timeout). A scenario
recorded next would then wait behind them and be judged on the suite's own load.

So after such a scenario (``left_behind``) the next one first waits for the server to be quiet
(``wait_for_quiet``): a cheap, safe request (``OPTIONS`` on the target's URL, RFC 9110 §9.3.7)
is sent and its head awaited; a server that answers it within ``prompt_s`` is quiet. One that
answers late was busy and is asked again; one that has not answered by ``at_most`` seconds is
left as it is, and the findings of the scenario recorded next say that the server was still
busy with the suite's earlier streams rather than blaming the server for what the suite did
(``busy_finding``). A server the suite started that logs its writes is also watched until its
log is quiet. Nothing here sleeps: each wait is on the server's answer or its log.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from conformance.checks.catalogue import Finding, unanswered_here
from conformance.scenarios.conditions import _wait_for_quiet, piece_times
from conformance.wire.recorder import BadURL, Exchange, record

PROMPT_S = 1.0          # an answer within this long (or 4 round trips, if more) is prompt
PROBE_WATCH_S = 0.01    # a probe's body still open this long after the request is closed
PROBE_BUDGET = 64 * 1024
ENDED = ("complete", "closed")   # ends the server chose; any other was the client's (or a fault)


@dataclass
class Settle:
    """How the wait for a quiet server before a scenario went."""
    after: str                 # what the suite left behind (``left_behind``)
    waited_s: float = 0.0
    probes: int = 0
    quiet: bool = False
    last: str = ""             # the last probe's outcome, one line

    def note(self) -> str:
        state = "quiet" if self.quiet else "still busy"
        return (f"after {self.after}, the server was {state} after {self.waited_s:.1f} s "
                f"({self.probes} OPTIONS probe{'s' * (self.probes != 1)}; last: {self.last})")


def exchanges(result) -> list:
    """Every single-exchange recording inside a scenario's result."""
    out = []
    for s in getattr(result, "streams", None) or []:
        if getattr(s, "rec", None) is not None:
            out.append(s.rec)
    for r in getattr(result, "exchanges", None) or []:
        out.append(r)
    holder = getattr(result, "holder", None)
    if holder is not None:
        out.append(holder)
    return out or [result]


def left_behind(scenario: str, result) -> str | None:
    """What a scenario may have left the server working on (None: nothing): every connection
    it opened beyond one, and every stream it closed before the server ended it."""
    if result is None or getattr(result, "skip", None):
        return None
    recs = [r for r in exchanges(result) if hasattr(r, "end")]   # a browser's or a client's record may have none
    cut = [r for r in recs if r.end not in ENDED and not (getattr(r, "error", None) and r.end is None)]
    streams = getattr(result, "streams", None) or []
    if len(streams) > 1:
        how = f"{len(streams)} streams at once" + (f", {len(cut)} closed before the server ended them" if cut else "")
        return f"the {scenario!r} scenario's {how}"
    if cut:
        return f"the {scenario!r} scenario's stream, closed by the suite ({cut[0].end})"
    return None


def prompt_s(rtt: float | None) -> float:
    return max(PROMPT_S, 4 * (rtt or 0.0))


def wait_for_quiet(ctx, after: str, at_most: float, rtt: float | None = None) -> Settle:
    """Probe the target until it answers promptly, at most ``at_most`` seconds (see the module)."""
    settle = Settle(after)
    start = time.monotonic()
    give_up = start + at_most
    prompt = prompt_s(rtt)
    before = None   # the previous probe's answer time (s)
    server = getattr(ctx, "server", None)
    if server is not None and hasattr(server, "stderr"):
        if piece_times(server.stderr(), 0.0):   # it logs its writes: wait for its log to be quiet
            _wait_for_quiet(server, ctx.target.pace(), at_most)
    while True:
        left = give_up - time.monotonic()
        if left <= 0:
            break
        t0 = time.monotonic()
        try:
            # Closed as soon as its head is read: a probe must not leave a stream behind either.
            rec = record(ctx.url, Exchange("settle", "OPTIONS", headers=[("Connection", "close")], watch=PROBE_WATCH_S,
                                           budget=PROBE_BUDGET),
                         timeout=left, deadline=left, insecure=ctx.target.insecure,
                         secret_headers=ctx.secret_headers)
        except BadURL as e:
            settle.last = str(e)
            break
        took = time.monotonic() - t0
        settle.probes += 1
        if rec.head_t is not None:
            settle.last = f"HTTP {rec.status} after {took:.1f} s"
            # Quiet: answered promptly, or no faster than the probe before (that is then the
            # server's own pace for it, not a queue of the suite's streams draining).
            if rec.head_t <= prompt or (before is not None and rec.head_t > before / 2):
                settle.quiet = True
                break
            before = rec.head_t
            continue   # answered, but late: the server was busy; ask again
        settle.last = rec.error or f"no answer ({rec.end})"
        if took < min(prompt, left):   # refused or closed at once: nothing to wait for
            settle.quiet = True
            break
    settle.waited_s = time.monotonic() - start
    return settle


def busy_finding(finding, check, rec, settle: Settle | None):
    """A finding of a scenario recorded while the server was still busy with the suite's own
    earlier streams: what the suite's load decided is said as such (``warn``, undecided, with
    what would decide it), never ``error`` nor a ``fail`` of the server (docs/design.md: exit 6 is
    never for the suite's own load)."""
    if settle is None or settle.quiet or finding.verdict not in ("error", "fail") or finding.crash is not None:
        return finding
    if not (unanswered_here(rec) or check.timed):
        return finding
    return Finding("warn", f"not judged: the server was still busy with the suite's earlier streams ({settle.note()}); "
                   f"this exchange: {finding.observed}",
                   f"{finding.expected or 'an answer'}; run this check on its own to judge it (--check {check.id})",
                   finding.metrics)
