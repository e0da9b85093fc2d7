"""HTTP/3 recordings: the target's request over QUIC, when its https responses offer ``h3``.

A browser learns that an origin speaks HTTP/3 from ``Alt-Svc`` (RFC 7838, RFC 9114 §3.1.1) on a
response it got over HTTP/1.1 or HTTP/2, and sends its later requests over QUIC. The ``h3``
scenario does the same: it reads ``Alt-Svc`` from the run's own GET of the target (or its HTTP/2
GET), or, when this run records neither, from a HEAD it sends for that alone; when a value offers
``h3``, it sends the target's request (method, body, headers: ``Context.exchange``) to that
alternative over QUIC with ``conformance.wire.h3.record_h3``, every DATA frame timestamped on
arrival. The recording is a ``Recording`` (``http_version`` "3"), so ``delivery.h3`` judges it
with the same delivery judges as ``delivery.h2``.

An http:// target is known not to offer HTTP/3 before anything is sent (``Scenario.skip``); a
response without ``Alt-Svc: h3`` is found when the GET is recorded. Either record carries the
reason in ``framing_notes`` and no ``http_version``: the check is then ``skip`` with it.
"""
from __future__ import annotations

from dataclasses import replace

from conformance.scenarios.base import Context, Scenario, register
from conformance.wire.h3 import alt_svc_h3, record_h3
from conformance.wire.recorder import Exchange, parse_url, request_headers
from conformance.wire.recording import Recording, redact

SCENARIO = "h3"


def _record(ctx: Context, note: str) -> Recording:
    """A record of no HTTP/3 exchange, with the reason (``delivery.h3`` skips it)."""
    ex = ctx.exchange(Exchange(SCENARIO))
    rec = Recording(SCENARIO, ctx.url, method=ex.method, request_version="3",
                    request_headers=redact(list(ctx.target.headers), ctx.secret_headers), parser="h3")
    rec.framing_notes.append(note)
    return rec


def _not_https(ctx: Context) -> Recording | None:
    """The record of an http:// target, where HTTP/3 is not offered (no request is sent)."""
    if parse_url(ctx.url).scheme == "https":
        return None
    return _record(ctx, "not https: HTTP/3 is only offered for https origins (RFC 9114 §3.1)")


def offer(ctx: Context) -> tuple[tuple[str | None, int] | None, str]:
    """The ``h3`` alternative the target's responses offer ((host or None, UDP port), or None),
    and where it was read: the run's GET, its HTTP/2 GET, or a HEAD sent here for it."""
    for name in ("get", "h2"):
        rec = ctx.recorded(name) if ctx.recorded else None
        if isinstance(rec, Recording) and rec.head_t is not None:
            break
    else:
        rec, name = ctx.record(Exchange(SCENARIO, "HEAD")), "HEAD"
        if rec.head_t is None:
            return None, f"a HEAD to read its Alt-Svc got no response head: {rec.error or rec.end}"
    values = rec.header_values("alt-svc")
    what = {"get": "the GET's response", "h2": "the HTTP/2 GET's response", "HEAD": "the HEAD's response"}[name]
    found = alt_svc_h3(values)
    if found is None:
        return None, (f"{what} offers no HTTP/3: " +
                      (f"Alt-Svc: {' / '.join(values)} names no h3 alternative" if values else "no Alt-Svc header")
                      + " (RFC 9114 §3.1.1)")
    return found, f"{what} offers it: Alt-Svc: {' / '.join(values)}"


def record(ctx: Context) -> Recording:
    plain = _not_https(ctx)
    if plain is not None:
        return plain
    found, where = offer(ctx)
    if found is None:
        return _record(ctx, where)
    ep = parse_url(ctx.url)
    ex = ctx.exchange(Exchange(SCENARIO))   # the target's request: method and body
    headers = request_headers(ep, replace(ex, headers=list(ctx.target.headers)))
    rec = record_h3(ctx.url, found, method=ex.method, body=ex.body, headers=headers, timeout=ctx.timeout,
                    deadline=ctx.deadline, watch=ex.watch, budget=ex.budget, insecure=ctx.target.insecure,
                    secret_headers=ctx.secret_headers, scenario=SCENARIO)
    rec.framing_notes.insert(0, where)
    return rec


register(Scenario(SCENARIO, "the request over HTTP/3 (QUIC) where Alt-Svc offers h3, DATA frames timestamped", record,
                  skip=_not_https))
