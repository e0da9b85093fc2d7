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
        """The exchange as sent: the target's request (``conformance.request``: its method and body,
        for every GET a scenario makes on the user's behalf; HEAD stays HEAD), its headers
        (``--header``) first, the watch, the head's deadline and the read budget."""
        if exchange.method == "GET" and not exchange.own_request and exchange.body is None:
            exchange = replace(exchange, method=getattr(self.target, "method", "GET"),
                               body=getattr(self.target, "body", None))
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
    # The most connections it holds open on the target at once. Shared scenarios run side by
    # side only while the sum of theirs fits the server's known workers (``run.Capacity``), so
    # the suite never makes a target's requests wait for one another (docs: scheduling). A
    # function of the context where it depends on the target (a browser loads the holder page
    # on built-in targets only).
    connections: int | Callable[[Context], int] = 1
    # The scenario's record when it will not be recorded for this target, known from the target
    # and the run's options alone, before anything is recorded (no I/O): a chain without
    # --reference, a disconnect on a server we did not start. Every check that reads it is then
    # ``skip``, so the run neither records it nor waits for its turn (``run.TargetRun``).
    skip: Callable[[Context], Any] | None = None
    # Modules its recording would import on first use: a run imports them before any recording
    # (``run.Run.ensure_started``). Imported by ten targets' threads at once, in the middle of
    # other recordings, ``requests`` and its kin held the interpreter's import lock and the
    # suite's own process stood still for up to 1.4 s (``engine.own_load``).
    modules: tuple[str, ...] = ()

    def held(self, ctx: Context) -> int:
        """The most connections this scenario holds on ``ctx``'s target at once."""
        return self.connections(ctx) if callable(self.connections) else self.connections


def exchange(name: str, description: str, **kw) -> Scenario:
    ex = Exchange(name, **kw)
    return Scenario(name, description, lambda ctx: ctx.record(ex))


# The order a target's scenarios are recorded in: one explicit list, as h11 keeps its READERS
# table. The plain GET comes first (it feeds most checks and fixes the profile the later ones read
# the body by), then HTTP/1.0 and HEAD; the browser, several streams, the large body and the
# disconnect, the browser's compressed GET, the clients, HTTP/2, HTTP/3 (after the GETs whose Alt-Svc it reads)
# and the chain follow. A scenario
# not named here cannot be registered, so a new one is placed here on purpose.
ORDER = ("get", "get-http10", "head", "browser", "browser-webkit", "browser-firefox", "concurrent", "large", "disconnect",
         "get-compressed",
         "httpx", "requests", "node-fetch", "h2", "h3", "chain")

SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    if scenario.name not in ORDER:
        raise ValueError(f"scenario {scenario.name!r} has no place in ORDER (conformance/scenarios/base.py)")
    SCENARIOS[scenario.name] = scenario
    return scenario


register(exchange("get", "GET over HTTP/1.1"))
register(exchange("get-http10", "GET over HTTP/1.0", http_version="1.0"))
register(Scenario("head", "HEAD over HTTP/1.1, listening across the producer's schedule after the head",
                  lambda ctx: ctx.record(Exchange("head", "HEAD", after_end_wait=head_listen_s(
                      ctx.target, ctx.recorded("get") if ctx.recorded else None, ctx.watch)))))


def order(name: str) -> int:
    """Where a scenario runs among a target's scenarios (``ORDER``)."""
    return ORDER.index(name)
