"""The scenarios the suite records for a target; each check names the one it reads.

A scenario is a small run function: it gets the target's context and returns plain data with
an ``error`` attribute (a ``Recording`` for a single exchange; other record types for
scenarios made of several exchanges or another client) and a ``to_dict()`` for the report.
Scenarios run one at a time per target (see ``run.py``), and only when a selected check needs
them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from conformance.recorder import Exchange, record
from conformance.target import Target

# After a HEAD response's head, keep listening this long for bytes that must not come. The
# seed's body follows its head at once, so half a second is plenty on loopback and remote.
HEAD_LISTEN_S = 0.5


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
    # another scenario's recording of this target, waited for (None: not recorded in this run);
    # the client scenarios compare themselves with the raw recorder's "get"
    recorded: Callable[[str], Any] | None = None

    def record(self, exchange: Exchange, url: str | None = None, **kw):
        headers = list(self.target.headers) + list(exchange.headers)
        ex = Exchange(exchange.scenario, exchange.method, exchange.http_version, headers, exchange.after_end_wait)
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
register(exchange("head", "HEAD over HTTP/1.1", method="HEAD", after_end_wait=HEAD_LISTEN_S))


def order(name: str) -> int:
    """Scenarios run in registration order: the plain GET first, as it feeds most checks."""
    return list(SCENARIOS).index(name)
