"""Judging rules on recordings made by hand: what is ``error`` (only a target not reached, or a GET
not answered 2xx), HEAD not supported, a body chunked twice, a body ended by the close."""
import pytest

from conformance.checks.catalogue import CHECKS, load_all
from conformance.checks.test_rfc9112_framing import chunked_again
from conformance.wire.recording import Read, Recording
from conformance.analysis.target import Target

load_all()
TARGET = Target("t", "http://127.0.0.1:1/5", "countdown", 0.1)


def chunk(p: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(p), p)


def rec(scenario="get", status=200, reason="OK", **kw) -> Recording:
    kw.setdefault("headers", [["Content-Type", "text/html; charset=utf-8"], ["Transfer-Encoding", "chunked"]])
    kw.setdefault("framing", "chunked")
    kw.setdefault("end", "complete")
    method = "HEAD" if scenario == "head" else "GET"
    return Recording(scenario, TARGET.url, method=method, status=status, reason=reason, http_version="1.1",
                     head_t=0.01, **kw)


def judge(cid, r, get=None, strict=False):
    return CHECKS[cid].judge(r, TARGET, strict, get=get)


GET_OK = rec()
HEAD_405 = rec("head", 405, "Method Not Allowed", framing="none",
               headers=[["Allow", "GET"], ["Content-Length", "18"]])
HEAD_SILENT = Recording("head", TARGET.url, method="HEAD", end="timeout", error="no response head within 10 s")


@pytest.mark.parametrize("get", [GET_OK, None], ids=["get-answered", "get-not-recorded"])
def test_head_refused_is_head_supported_warn_and_head_no_body_skip(get):
    f = judge("framing.head-supported", HEAD_405, get)
    assert f.verdict == "warn" and "405 Method Not Allowed" in f.observed and "Allow: GET" in f.observed
    assert judge("framing.head-supported", HEAD_405, get, strict=True).verdict == "fail"
    f = judge("framing.head-no-body", HEAD_405, get)
    assert f.verdict == "skip" and "framing.head-supported" in f.observed


def test_a_head_never_answered_beside_an_answered_get_is_not_an_error():
    f = judge("framing.head-supported", HEAD_SILENT, GET_OK)
    assert f.verdict == "warn" and "no response head" in f.observed and "GET was answered 200" in f.observed
    assert judge("framing.head-no-body", HEAD_SILENT, GET_OK).verdict == "skip"
    # without the GET beside it, a target that answers nothing cannot be told from one not reached
    assert judge("framing.head-no-body", HEAD_SILENT).verdict == "error"


@pytest.mark.parametrize("get", [rec(status=404, reason="Not Found"),
                                 Recording("get", TARGET.url, error="connection refused by 127.0.0.1:1")],
                         ids=["get-404", "get-refused"])
def test_a_get_not_answered_makes_every_check_an_error(get):
    for cid in ("framing.head-supported", "framing.head-no-body", "framing.http10-no-te"):
        f = judge(cid, HEAD_405 if CHECKS[cid].scenario == "head" else rec("get-http10", 500, "Error"), get)
        assert f.verdict == "error", (cid, f.observed)
    assert judge("framing.complete", get).verdict == "error"
    # an exchange of its own that was answered is still judged
    assert judge("framing.http10-no-te", rec("get-http10"), get).verdict == "fail"
    # HEAD refused as GET is: GET's answer is the reason given, as GET's own checks give it
    # (one cause, said once)
    f = judge("framing.head-no-body", HEAD_405, get)
    assert f.verdict == "error" and f.observed == judge("framing.complete", get).observed, f.observed


def test_another_scenarios_failure_beside_an_answered_get_is_judged():
    busy = Recording("get-http10", TARGET.url, request_version="1.0", end="timeout",
                     error="no response head within 3 s")
    f = judge("delivery.http10", busy, GET_OK)
    assert f.verdict == "warn" and "no response head within 3 s" in f.observed
    assert judge("framing.http10-no-te", busy, GET_OK).verdict == "fail"
    assert judge("delivery.http10", rec("get-http10", 505, "HTTP Version Not Supported"), GET_OK).verdict == "warn"
    # the suite's own interruption is not the server's answer
    stopped = Recording("get-http10", TARGET.url, error="the run was interrupted")
    assert judge("delivery.http10", stopped, GET_OK).verdict == "error"


def test_head_bytes_after_the_head_are_all_counted_with_their_time():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    r = rec("head", framing="none", raw_kept=(head + b"0\r\n\r\n").decode("latin-1"), raw_bytes=len(head) + 5,
            after_end_bytes=5, reads=[Read(0.01, len(head)), Read(6.01, 5)])
    f = judge("framing.head-no-body", r, GET_OK)
    assert f.verdict == "fail" and "5 bytes" in f.observed and "6.00 s after the head" in f.observed
    assert r"b'0\r\n\r\n'" in f.observed and f.metrics["first_after_head_s"] == 6.0
    assert judge("framing.head-no-body", rec("head", framing="none"), GET_OK).verdict == "pass"


WRITES = [b"<h2>Prepare for Launch!</h2>", b"<ul>", b"<li>Liftoff in 2...</li>", b"<li>Liftoff in 1...</li></ul>"]
TWICE = b"".join(chunk(w) for w in WRITES) + b"0\r\n\r\n"


@pytest.mark.parametrize("body, whole, chunks", [
    (TWICE, True, 4),                                   # a whole chunked body, last-chunk and all
    (chunk(b"hello") + b"0\r\n\r\n", True, 1),          # written in one piece, chunked again
    (chunk(b"hi") + b"0\r\nX-T: 1\r\n\r\n", True, 1),    # with a trailer
    (TWICE[:-5], False, 4), (TWICE[:-9], False, 3),     # cut short, or longer than kept
    (b"5\r\nhello\r\n", True, None),                     # a text protocol's line that looks like a chunk
    (b"5\r\nhello\r\n", False, None),
    (b"5\r\nhello\r\n3\r\nabc\r\n", True, None),         # chunks without the last-chunk, in a whole body
    (TWICE[:-5], True, None),
    (TWICE + b"more", True, None),                       # anything after the chunked body
    (b"0\r\n\r\n", True, None),                          # no data chunk
    (b"abc\r\ndef\r\n", True, None), (b"<h2>hi</h2>", True, None), (b"", True, None),
    (b"5\r\nhello\n", True, None),                       # bare LF: not chunk framing
    (TWICE[:40], False, None),                           # fewer than three chunks seen
])
def test_chunked_again_rule(body, whole, chunks):
    assert chunked_again(body, whole) == chunks


def test_double_chunking_fails_chunked_once_with_the_first_bytes_escaped():
    r = rec(body_kept=TWICE.decode("latin-1"), body_bytes=len(TWICE))
    f = judge("framing.chunked-once", r)
    assert f.verdict == "fail" and "4 chunks and its last-chunk" in f.observed
    assert r"it starts b'1c\r\n<h2>Prepare for Launch!</h2>\r\n4\r\n<ul>" in f.observed
    plain = b"".join(WRITES)
    assert judge("framing.chunked-once", rec(body_kept=plain.decode(), body_bytes=len(plain))).verdict == "pass"
    line = b"5\r\nhello\r\n"   # a body that is one chunk-looking line passes
    assert judge("framing.chunked-once", rec(body_kept=line.decode(), body_bytes=len(line))).verdict == "pass"


def test_self_delimited():
    closed = rec(headers=[["Content-Type", "text/html"]], framing="close", end="closed", body_bytes=120)
    f = judge("framing.self-delimited", closed)
    assert f.verdict == "warn" and "ended when the server closed" in f.observed and "kept alive" in f.observed
    assert judge("framing.self-delimited", rec()).verdict == "pass"
    assert judge("framing.self-delimited", rec(framing="content-length")).verdict == "pass"
    old = rec(headers=[], framing="close", end="closed")
    old.http_version = "1.0"
    assert judge("framing.self-delimited", old).verdict == "skip"


@pytest.mark.parametrize("raised", ["start", "drive"])
def test_a_chromium_that_cannot_start_or_be_driven_is_skip_not_error(monkeypatch, raised):
    from conformance.scenarios import browser
    from conformance.scenarios.base import Context

    def fail(fn, limit):
        if raised == "start":
            raise browser.BrowserStartError("Chromium did not start (/usr/bin/chromium): no display")
        raise RuntimeError("Target page, context or browser has been closed")
    monkeypatch.setattr(browser, "unavailable", lambda: None)
    monkeypatch.setattr(browser.BROWSER, "run", fail)
    r = browser.run(Context(TARGET, TARGET.url, 1.0, 5.0))
    f = judge("browser.progressive-render", r, GET_OK)
    assert f.verdict == "skip" and ("did not start" in f.observed or "could not be driven" in f.observed), f.observed
