"""The scenario behind ``delivery.compressed`` and ``framing.persistent-reuse``: the GET a browser
sends, then a HEAD on the same connection.

Every browser asks for compression, so a stream held only when compressed is held for every
browser user. The request carries the browser's ``Accept-Encoding: gzip, deflate, br, zstd`` and
the ``Accept`` a browser sends for the profile (an ``EventSource`` for SSE, a navigation for the
countdown's HTML, ``fetch()`` otherwise); the identity GET recorded first (``get``) stays the
control the compressed one is compared with. Record once, judge many: the streamed response
feeds ``delivery.compressed``, and with the HEAD after it ``framing.persistent-reuse``.
"""
from __future__ import annotations

from conformance.analysis.target import profile_of
from conformance.scenarios.base import Context, Scenario, register
from conformance.scenarios.conditions import Sequence
from conformance.wire.codings import BROWSER_ACCEPT_ENCODING
from conformance.wire.recorder import Exchange, record_sequence

SCENARIO = "get-compressed"
SECOND_METHOD = "HEAD"   # cheap, and a full exchange: the connection's reuse is what is judged
BROWSER_ACCEPT = {
    "sse": "text/event-stream",    # EventSource
    "countdown": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "ndjson": "*/*",               # fetch()
    "bytes": "*/*",
}


def browser_headers(profile: str | None) -> list[tuple[str, str]]:
    """The request headers a browser sends for a stream of this profile."""
    return [("Accept", BROWSER_ACCEPT.get(profile or "bytes", "*/*")), ("Accept-Encoding", BROWSER_ACCEPT_ENCODING)]


class Compressed(Sequence):
    """The browser-style exchanges, and the identity GET they are compared with (or None)."""

    def __init__(self, exchanges, identity=None):
        super().__init__(SCENARIO, exchanges)
        self.identity = identity


def _compressed(ctx: Context) -> Compressed:
    identity = ctx.recorded("get") if ctx.recorded else None
    profile = ctx.target.profile or (profile_of(identity) if identity is not None and identity.status else None)
    headers = browser_headers(profile)
    exchanges = [ctx.exchange(Exchange(SCENARIO, headers=headers))]
    if exchanges[0].method == "GET":   # another method's target is asked nothing more (conformance.scenarios.budget)
        exchanges.append(ctx.exchange(Exchange(f"{SCENARIO}-second", method=SECOND_METHOD, headers=headers)))
    recs = record_sequence(ctx.url, exchanges, timeout=ctx.timeout, deadline=ctx.deadline,
                           insecure=ctx.target.insecure, secret_headers=ctx.secret_headers)
    return Compressed(recs, identity if identity is not None and not getattr(identity, "error", None) else None)


register(Scenario(SCENARIO, f"GET as a browser sends it (Accept-Encoding: {BROWSER_ACCEPT_ENCODING}), "
                            f"then {SECOND_METHOD} on the same connection", _compressed))
