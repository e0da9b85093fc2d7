"""Expected verdicts of every check on every built-in target, as data.

A target's row lists the checks whose verdict differs from the stream control's (every MUST and
SHOULD passes, ``delivery.chunk-per-write`` is ``info``). Each check appears as ``fail``/``warn``
on at least one control and as ``pass`` on ``control-stream``: that is what shows every check
able to fail and able to pass (``test_every_check_can_pass_and_fail``). The client checks' SSE and
NDJSON controls (``targets/client_controls.py``: random gaps, a held SSE stream, a client's read
size) run at their own pace in ``tests/test_clients.py``.
"""
from conformance.checks.catalogue import CHECKS, INFO, load_all

load_all()

BASELINE = {cid: ("info" if c.level == INFO else "pass") for cid, c in CHECKS.items()}
BASELINE["delivery.h2"] = "skip"   # plain-http targets cannot offer HTTP/2 (ALPN needs TLS)
BASELINE["delivery.h3"] = "skip"   # nor HTTP/3 (https only), nor do the https ones here offer it (no Alt-Svc: h3)
# Only webpy and the condition controls (targets/conditions.py) serve a large file and log their
# pieces to stderr; the other built-ins are skipped with that reason.
BASELINE["delivery.large-body"] = "skip"
BASELINE["delivery.disconnect"] = "skip"
# No built-in target has a --reference (its pass and fail: nginx in front of the probe, tests/test_chain.py).
BASELINE["delivery.chain"] = "skip"
# What the condition controls do right: the large file streamed, production stopped on disconnect.
CONDITIONS_OK = {"delivery.large-body": "pass", "delivery.disconnect": "pass"}
# A held body fails under every condition that reads it: gzip (not compressed: the plain body),
# several streams at once.
HELD = {"delivery.compressed": "fail", "delivery.concurrent": "fail"}
# A held body is held for every client as its users run it (httpx, requests, Node's fetch).
CLIENTS_HELD = {"client.httpx": "warn", "client.requests": "warn", "client.node-fetch": "warn"}
# Broken framing that every client refuses (each names the framing fault behind its error).
CLIENTS_REFUSE = dict(CLIENTS_HELD)

DIFFERENCES: dict[str, dict[str, str]] = {
    "control-stream": {},
    "webpy": dict(CONDITIONS_OK),
    "webpy-seed": {
        # cheroot adds its own Transfer-Encoding beside the app's: the header says chunked twice.
        "framing.strict-parse": "fail", "framing.chunked-once": "fail",
        # the app's header is sent to HTTP/1.0 clients too, whose body is then not chunked
        "framing.http10-no-te": "fail",
        # web.py runs GET for HEAD and the generator's body goes out after the head
        "framing.head-no-body": "fail",
        "framing.content-type": "warn",   # text/html without a charset
        "client.httpx": "warn",           # httpx (h11 inside) rejects the doubled Transfer-Encoding
        # requests and Node's fetch read it: the body is chunked once, only the header is doubled
    },
    "control-buffered": {
        "delivery.head-early": "warn",   # head and body sent together at the end
        "delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn", **HELD,
        **CLIENTS_HELD, "framing.chunked-once": "skip", "framing.no-te-with-cl": "skip", "framing.chunk-syntax": "skip",
    },
    "control-late-body": {"delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn",
                         **CLIENTS_HELD, **HELD},
    "control-two-bursts": {"delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn",
                          **CLIENTS_HELD, **HELD},
    "control-stall": {"delivery.cadence": "warn"},
    # Node's fetch (llhttp) refuses Content-Length beside Transfer-Encoding; httpx and requests read it
    "control-te-and-cl": {"framing.no-te-with-cl": "fail", "client.node-fetch": "warn"},
    # httpx refuses it; requests and Node's fetch decode chunked once and hand the inner framing on as content
    "control-chunked-twice": {"framing.strict-parse": "fail", "framing.chunked-once": "fail", **CLIENTS_REFUSE},
    "control-chunked-not-last": {"framing.strict-parse": "fail", "framing.chunked-once": "fail",
                                 "framing.complete": "fail", "framing.chunk-syntax": "skip",
                                 "framing.self-delimited": "warn",   # gzip last: only a close could end it
                                 # httpx refuses it, Node's fetch waits for the close; requests reads it as chunked
                                 "client.httpx": "warn", "client.node-fetch": "warn",
                                 "framing.persistent-reuse": "skip"},
    "control-bad-chunk-size": {"framing.strict-parse": "fail", "framing.chunk-syntax": "fail", "framing.complete": "fail",
                               **CLIENTS_REFUSE,
                               "framing.persistent-reuse": "skip"},
    "control-bad-chunk-crlf": {"framing.strict-parse": "fail", "framing.chunk-syntax": "fail", **CLIENTS_REFUSE},
    "control-truncated": {"framing.strict-parse": "fail", "framing.chunk-syntax": "fail", "framing.complete": "fail",
                          **CLIENTS_REFUSE,
                          "framing.persistent-reuse": "skip"},
    "control-head-body": {"framing.head-no-body": "fail"},
    # the HEAD's head at once, a stray last-chunk when the GET schedule would end
    "control-head-late-chunk": {"framing.head-no-body": "fail"},
    # HEAD refused while GET streams: not an error; nothing to judge for head-no-body
    "control-head-405": {"framing.head-supported": "warn", "framing.head-no-body": "skip"},
    # chunked once in the header, twice on the wire: the de-chunked body is a chunked body
    "control-double-chunked": {"framing.chunked-once": "fail"},
    # no Content-Length, no chunked: the body ends with the connection
    "control-close-delimited": {"framing.self-delimited": "warn", "framing.chunked-once": "skip",
                                "framing.no-te-with-cl": "skip", "framing.chunk-syntax": "skip",
                                "framing.persistent-reuse": "skip"},
    "control-http10-te": {"framing.http10-no-te": "fail"},
    "control-no-content-type": {"framing.content-type": "warn"},
    "asgi-hypercorn-h2": {"delivery.h2": "pass",
                          # hypercorn lets the app write once more after a failed write before it raises
                          "delivery.disconnect": "warn"},
    "control-h2-buffered": {"delivery.head-early": "warn", "delivery.first-byte": "fail", "delivery.progressive": "fail",
                            "delivery.cadence": "warn", **CLIENTS_HELD, "delivery.h2": "warn", **HELD, "delivery.http10": "warn"},
    # delivery under real conditions (targets/conditions.py): one fault each
    "control-gzip-stream": dict(CONDITIONS_OK),   # gzip decoded read by read still streams
    # every client asks for gzip by default and gets the held body; the finding says it is held under gzip
    "control-gzip-buffered": {**CONDITIONS_OK, "delivery.compressed": "fail", **CLIENTS_HELD},
    "control-http10-buffered": {**CONDITIONS_OK, "delivery.http10": "warn"},
    # one connection at a time: every stream waits for the one before; it says Connection: close
    "control-serial": {**CONDITIONS_OK, "delivery.concurrent": "fail", "framing.persistent-reuse": "skip"},
    "control-large-buffered": {**CONDITIONS_OK, "delivery.large-body": "fail"},
    "control-disconnect-ignored": {**CONDITIONS_OK, "delivery.disconnect": "warn"},
    "control-reuse-closed": {**CONDITIONS_OK, "framing.persistent-reuse": "warn"},
}


def expected(target: str) -> dict[str, str]:
    return {**BASELINE, **DIFFERENCES[target]}
