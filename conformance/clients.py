"""Scenarios driven by the clients users run, recorded into the same ``Recording`` shape as the
wire recorder's so that the same delivery analysis judges them."""
from __future__ import annotations

import time

import httpx

from conformance.recording import BODY_KEEP, Piece, Recording, redact
from conformance.scenarios import Context, Scenario, register


def record_httpx(ctx: Context) -> Recording:
    """GET with httpx's streaming API; every ``iter_raw()`` piece is timestamped on arrival.

    ``iter_raw`` yields the body as received (transfer coding removed, content coding kept), so
    its timing is the client's view of the stream. An exception from httpx is kept verbatim in
    ``strict_error``: that is the finding, not a failure to record.
    """
    headers = [("Accept-Encoding", "identity")] + list(ctx.target.headers)
    rec = Recording("httpx", ctx.url, request_headers=redact(headers, ctx.secret_headers), parser="httpx")
    timeout = httpx.Timeout(ctx.timeout)
    body = bytearray()
    start = time.monotonic()
    try:
        with httpx.Client(http1=True, http2=False, verify=not ctx.target.insecure, timeout=timeout,
                          follow_redirects=False) as client:
            marks: dict[str, float] = {}

            def trace(name, info):  # httpcore's hooks: when the TCP connect and the request end
                marks[name] = time.monotonic()

            t0 = time.monotonic()
            with client.stream("GET", ctx.url, headers=headers, extensions={"trace": trace}) as response:
                if "connection.connect_tcp.started" in marks and "connection.connect_tcp.complete" in marks:
                    rec.connect_s = marks["connection.connect_tcp.complete"] - marks["connection.connect_tcp.started"]
                # times count from the request's last byte, as in the wire recorder
                t0 = marks.get("http11.send_request_body.complete", t0)
                rec.head_t = time.monotonic() - t0
                rec.status, rec.reason = response.status_code, response.reason_phrase
                rec.http_version = response.http_version.removeprefix("HTTP/")
                rec.headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers.raw]
                for data in response.iter_raw():
                    t = time.monotonic() - t0
                    rec.pieces.append(Piece(t, rec.body_bytes, len(data), False, False))
                    rec.body_bytes += len(data)
                    if len(body) < BODY_KEEP:
                        body += data[:BODY_KEEP - len(body)]
                    if time.monotonic() - start > ctx.deadline:
                        rec.end, rec.end_t = "deadline", t
                        break
                    if ctx.watch and t >= ctx.watch:   # --watch: an endless stream is judged on what came
                        rec.end, rec.end_t = "watched", t
                        break
                else:
                    rec.end, rec.end_t = "complete", time.monotonic() - t0
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        if rec.status is None:
            rec.error = f"httpx could not connect: {e}"
    except httpx.HTTPError as e:
        rec.strict_error = f"{type(e).__name__}: {e}"
        rec.end = rec.end or ("timeout" if isinstance(e, httpx.TimeoutException) else "error")
    rec.body_kept = bytes(body).decode("latin-1")
    return rec


register(Scenario("httpx", "GET with httpx (HTTP/1.1), iter_raw timestamped", record_httpx))
