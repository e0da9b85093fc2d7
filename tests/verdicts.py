"""Expected verdicts of every check on every built-in target, as data.

A target's row lists the checks whose verdict differs from the stream control's (every MUST and
SHOULD passes, ``delivery.chunk-per-write`` is ``info``). Each check appears as ``fail``/``warn``
on at least one control and as ``pass`` on ``control-stream``: that is what shows every check
able to fail and able to pass (``test_every_check_can_pass_and_fail``).
"""
from conformance.catalogue import CHECKS, INFO, load_all

load_all()

BASELINE = {cid: ("info" if c.level == INFO else "pass") for cid, c in CHECKS.items()}
BASELINE["delivery.h2"] = "skip"   # plain-http targets cannot offer HTTP/2 (ALPN needs TLS)

DIFFERENCES: dict[str, dict[str, str]] = {
    "control-stream": {},
    "webpy": {},
    "webpy-seed": {
        # cheroot adds its own Transfer-Encoding beside the app's: the header says chunked twice.
        "framing.strict-parse": "fail", "framing.chunked-once": "fail",
        # the app's header is sent to HTTP/1.0 clients too, whose body is then not chunked
        "framing.http10-no-te": "fail",
        # web.py runs GET for HEAD and the generator's body goes out after the head
        "framing.head-no-body": "fail",
        "framing.content-type": "warn",   # text/html without a charset
        "client.httpx": "warn",           # httpx (h11 inside) rejects the doubled Transfer-Encoding
    },
    "control-buffered": {
        "delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn",
        "client.httpx": "warn", "framing.chunked-once": "skip", "framing.no-te-with-cl": "skip", "framing.chunk-syntax": "skip",
    },
    "control-late-body": {"delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn",
                         "client.httpx": "warn"},
    "control-two-bursts": {"delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn",
                          "client.httpx": "warn"},
    "control-stall": {"delivery.cadence": "warn"},
    "control-te-and-cl": {"framing.no-te-with-cl": "fail"},
    "control-chunked-twice": {"framing.strict-parse": "fail", "framing.chunked-once": "fail", "client.httpx": "warn"},
    "control-chunked-not-last": {"framing.strict-parse": "fail", "framing.chunked-once": "fail",
                                 "framing.complete": "fail", "framing.chunk-syntax": "skip",
                                 "client.httpx": "warn"},
    "control-bad-chunk-size": {"framing.strict-parse": "fail", "framing.chunk-syntax": "fail", "framing.complete": "fail",
                               "client.httpx": "warn"},
    "control-bad-chunk-crlf": {"framing.strict-parse": "fail", "framing.chunk-syntax": "fail", "client.httpx": "warn"},
    "control-truncated": {"framing.strict-parse": "fail", "framing.chunk-syntax": "fail", "framing.complete": "fail",
                          "client.httpx": "warn"},
    "control-head-body": {"framing.head-no-body": "fail"},
    "control-http10-te": {"framing.http10-no-te": "fail"},
    "control-no-content-type": {"framing.content-type": "warn"},
    "asgi-hypercorn-h2": {"delivery.h2": "pass"},
    "control-h2-buffered": {"delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn",
                            "client.httpx": "warn", "delivery.h2": "warn"},
}


def expected(target: str) -> dict[str, str]:
    return {**BASELINE, **DIFFERENCES[target]}
