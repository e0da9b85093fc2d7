"""The scenarios the suite records for a target; each check names the one it reads.

A scenario is a small run function: it gets the target's context and returns plain data with
an ``error`` attribute (a ``Recording`` for a single exchange; other record types for
scenarios made of several exchanges or another client) and a ``to_dict()`` for the report.
Scenarios run one at a time per target (see ``run.py``), and only when a selected check needs
them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from conformance.analysis.target import Target
from conformance.wire.recorder import Exchange, record
from conformance.wire.recording import RAW_KEEP

# After a HEAD response's head, keep listening for bytes that must not come. A server that runs
# its GET handler for HEAD may send the body at once (the seed), or only its last-chunk when the
# handler finishes, one producer schedule later: so the listening spans the producer's schedule
# and two intervals more (at least HEAD_LISTEN_S), bounded by the watch window (or WATCH_S), and
# ends early when the server closes the connection.
HEAD_LISTEN_S = 0.5
WATCH_S = 30.0
# Whole-run bounds against hostile servers. A head must be complete within its own deadline:
# twice the idle timeout, at least HEAD_DEADLINE_MIN s (a head trickled a byte at a time never
# trips the idle timeout). A body is read up to READ_BUDGET wire bytes: sixteen times what a
# recording keeps of it (RAW_KEEP), far more than any stream's profile needs to be judged.
HEAD_DEADLINE_MIN = 10.0
READ_BUDGET = 16 * RAW_KEEP


def head_deadline(timeout: float) -> float:
    return max(2 * timeout, HEAD_DEADLINE_MIN)


def head_listen_s(target, get=None, watch: float | None = None) -> float:
    """How long the HEAD recording listens after the head (s), for this target: across the
    known schedule and two intervals more; without a schedule, as long as the GET's body took
    (``get``, its recording) and a second more; at least HEAD_LISTEN_S, at most the watch."""
    if watch is None:
        watch = target.watch_s() if hasattr(target, "watch_s") else (getattr(target, "watch", None) or WATCH_S)
    if target.interval is not None:
        span = target.expected_span() + 2 * target.interval
    else:
        span = ((getattr(get, "end_t", None) or 0.0) - (getattr(get, "head_t", None) or 0.0)) + 1.0
    return min(max(HEAD_LISTEN_S, span), watch)


@dataclass
class Context:
    """What a scenario may use: the target, its timing budget, and the server when we own it."""
    target: Target
    url: str
    timeout: float        # idle timeout per read
    deadline: float       # for one exchange
    secret_headers: tuple[str, ...] = ()
    server: Any = None    # targets.launcher.Running for built-in targets
    extra: dict = field(default_factory=dict)
    live: dict | None = None   # (exchange name, token) -> (bytes, reads) so far of each exchange in flight
    watch: float | None = None  # s: a stream still open this long after its request is closed and judged
    recorded: Callable[[str], Any] | None = None   # another scenario's record of this target, by name

    def exchange(self, exchange: Exchange) -> Exchange:
        """The exchange as sent: the target's own headers (``--header``) first, the watch, the
        head's deadline and the read budget."""
        return replace(exchange, headers=list(self.target.headers) + list(exchange.headers),
                       watch=self.watch if exchange.watch is None else exchange.watch,
                       head_deadline=exchange.head_deadline or head_deadline(self.timeout),
                       budget=exchange.budget or READ_BUDGET)

    def record(self, exchange: Exchange, url: str | None = None, **kw):
        ex = self.exchange(exchange)
        if self.live is None or "progress" in kw:
            return record(url or self.url, ex, timeout=self.timeout, deadline=self.deadline,
                          insecure=self.target.insecure, secret_headers=self.secret_headers, **kw)
        key = (ex.scenario, object())   # one entry per exchange in flight
        try:
            return record(url or self.url, ex, timeout=self.timeout, deadline=self.deadline,
                          insecure=self.target.insecure, secret_headers=self.secret_headers,
                          progress=lambda rec: self.live.__setitem__(key, (rec.raw_bytes, len(rec.reads))), **kw)
        finally:
            self.live.pop(key, None)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Context], Any]
    # An exclusive scenario has the target to itself: it opens many connections at once, or
    # measures the server as a whole (its memory, its log), so nothing else may run beside it.
    exclusive: bool = False


def exchange(name: str, description: str, **kw) -> Scenario:
    ex = Exchange(name, **kw)
    return Scenario(name, description, lambda ctx: ctx.record(ex))


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    SCENARIOS[scenario.name] = scenario
    return scenario


register(exchange("get", "GET over HTTP/1.1"))
register(exchange("get-http10", "GET over HTTP/1.0", http_version="1.0"))
register(Scenario("head", "HEAD over HTTP/1.1, listening across the producer's schedule after the head",
                  lambda ctx: ctx.record(Exchange("head", "HEAD", after_end_wait=head_listen_s(
                      ctx.target, ctx.recorded("get") if ctx.recorded else None, ctx.watch)))))


def order(name: str) -> int:
    """Scenarios run in registration order: the plain GET first, as it feeds most checks."""
    return list(SCENARIOS).index(name)
