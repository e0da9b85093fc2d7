"""The wire recorder against a scripted server: what it records, how it ends, what it refuses.

Every server here is a ``tests.scripted.ScriptedServer`` on 127.0.0.1. Where a test needs two
separate reads it sends ``SYNC`` (wait until the recorder has read everything so far) before
pausing, so pieces cannot coalesce on a busy machine; timing assertions leave wide margins
("at least 40 ms apart" after a 100 ms pause).
"""
from __future__ import annotations

import json
import socket
import time

import pytest

from conformance.wire import recorder, tolerant
from conformance.wire.recorder import BadURL, Exchange, parse_url, record
from conformance.wire.recording import REDACTED, Piece, Recording
from tests.scripted import CLOSE, HOLD, RESET, SYNC, ClientReads, Pause, ScriptedServer, make_tls

OK_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
SEED_HEAD = (b"HTTP/1.1 200 OK\r\nContent-type: text/html\r\nTransfer-Encoding: chunked\r\n"
             b"Transfer-Encoding: chunked\r\nServer: localhost\r\n\r\n")
PAUSE = 0.1      # between pieces that must arrive apart
APART = 0.04     # what "apart" is asserted as: far below PAUSE, so a busy machine cannot flap it


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def run(script, exchange=None, path="/x", **kw) -> tuple[Recording, ScriptedServer]:
    """Record one exchange against a scripted server (with read counting for SYNC)."""
    with ClientReads.installed() as reads, ScriptedServer(script, client_reads=reads) as srv:
        kw.setdefault("timeout", 5.0)
        rec = record(srv.url(path), exchange, **kw)
    return rec, srv


def assert_times_increase(rec: Recording) -> None:
    ts = [r.t for r in rec.reads]
    assert ts == sorted(ts) and all(t > 0 for t in ts)
    assert [p.t for p in rec.pieces] == sorted(p.t for p in rec.pieces)
    assert all(p.t in ts for p in rec.pieces), "every piece carries the time of a read"


# --- strict (h11) readings ------------------------------------------------------------------------

def test_chunked_two_reads_apart():
    rec, srv = run([OK_CHUNKED + chunk(b"hello"), SYNC, Pause(PAUSE), chunk(b" world") + b"0\r\n\r\n"])
    assert (rec.parser, rec.strict_error, rec.error) == ("h11", None, None)
    assert (rec.status, rec.reason, rec.http_version, rec.framing) == (200, "OK", "1.1", "chunked")
    assert rec.header_values("content-type") == ["text/plain"]
    assert rec.end == "complete" and rec.body == b"hello world" and rec.body_bytes == 11
    assert [(p.offset, p.size, p.chunk_start, p.chunk_end) for p in rec.pieces] == [(0, 5, True, True), (5, 6, True, True)]
    assert len(rec.reads) == 2 and rec.raw_bytes == sum(r.size for r in rec.reads) == srv.sent
    assert rec.raw == OK_CHUNKED + chunk(b"hello") + chunk(b" world") + b"0\r\n\r\n"
    assert_times_increase(rec)
    assert rec.reads[1].t - rec.reads[0].t >= APART
    assert rec.head_t == rec.pieces[0].t and rec.end_t == rec.pieces[1].t
    assert rec.connect_s is not None and rec.connect_s >= 0
    assert srv.request.startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % srv.port)


def test_chunk_split_across_reads_carries_boundaries():
    # one chunk's data arrives in two reads: the first piece starts the chunk, the second ends it
    rec, _ = run([OK_CHUNKED + b"a\r\n01234", SYNC, Pause(PAUSE), b"56789\r\n0\r\n\r\n"])
    assert rec.end == "complete" and rec.body == b"0123456789"
    assert [(p.offset, p.size, p.chunk_start, p.chunk_end) for p in rec.pieces] == [(0, 5, True, False), (5, 5, False, True)]
    assert rec.pieces[1].t - rec.pieces[0].t >= APART


def test_chunk_size_line_in_its_own_read_still_starts_the_chunk():
    # h11 flags such data as a continuation; the recording must not
    rec, _ = run([OK_CHUNKED + b"5\r\n", SYNC, b"hello\r\n", SYNC, b"6\r\n wo", SYNC, b"rld\r\n0\r\n\r\n"])
    assert (rec.parser, rec.end, rec.body) == ("h11", "complete", b"hello world")
    assert [(p.offset, p.size, p.chunk_start, p.chunk_end) for p in rec.pieces] == [
        (0, 5, True, True), (5, 3, True, False), (8, 3, False, True)]


def test_content_length():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    rec, _ = run([head + b"hello", SYNC, Pause(PAUSE), b"world", HOLD])
    assert (rec.parser, rec.framing, rec.end) == ("h11", "content-length", "complete")
    assert [(p.offset, p.size, p.chunk_start, p.chunk_end) for p in rec.pieces] == [(0, 5, False, False), (5, 5, False, False)]
    assert rec.body == b"helloworld" and rec.after_end_bytes == 0
    assert rec.pieces[1].t - rec.pieces[0].t >= APART


def test_close_delimited_ends_closed():
    rec, _ = run([b"HTTP/1.1 200 OK\r\n\r\nabc", SYNC, Pause(PAUSE), b"def", CLOSE])
    assert (rec.parser, rec.framing, rec.end, rec.error) == ("h11", "close", "closed", None)
    assert rec.body == b"abcdef" and [p.size for p in rec.pieces] == [3, 3]
    assert rec.end_t >= rec.pieces[-1].t


def test_http10_request_line_is_sent_as_such():
    ex = Exchange("get-http10", http_version="1.0")
    rec, srv = run([b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold school", CLOSE], ex)
    assert srv.request.startswith(b"GET /x HTTP/1.0\r\n")
    # "Connection: close" is what h11 is told, not what goes on the wire
    assert b"connection" not in srv.request.lower()
    assert (rec.request_version, rec.http_version, rec.framing, rec.end) == ("1.0", "1.0", "close", "closed")
    assert rec.body == b"old school"


def test_interim_response_is_skipped():
    rec, _ = run([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    assert (rec.parser, rec.status, rec.end, rec.body) == ("h11", 200, "complete", b"ok")


@pytest.mark.parametrize("together", [True, False], ids=["same-read", "later-read"])
def test_head_with_extra_bytes(together):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = chunk(b"<h2>hi</h2>") + b"0\r\n\r\n"
    script = [head + body, CLOSE] if together else [head, SYNC, body, CLOSE]
    rec, srv = run(script, Exchange("head", "HEAD", after_end_wait=2.0))
    assert srv.request.startswith(b"HEAD /x HTTP/1.1\r\n")
    assert (rec.method, rec.framing, rec.end, rec.pieces, rec.body_bytes) == ("HEAD", "none", "complete", [], 0)
    assert rec.after_end_bytes == len(body)
    assert rec.raw_bytes == len(head) + len(body)


def test_head_without_extra_bytes_waits_then_stops():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n"
    t0 = time.monotonic()
    rec, _ = run([head, HOLD], Exchange("head", "HEAD", after_end_wait=0.2))
    assert (rec.end, rec.after_end_bytes, rec.error) == ("complete", 0, None)
    assert 0.15 <= time.monotonic() - t0 < 5


def test_head_listening_outlasts_the_idle_timeout():
    """A stray last-chunk that comes long after a HEAD's head (a GET handler running on) is
    caught across the listening window, however short the idle timeout per read."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    rec, _ = run([head, SYNC, Pause(0.6), b"0\r\n\r\n", SYNC, Pause(0.3), b"0\r\n\r\n", HOLD],
                 Exchange("head", "HEAD", after_end_wait=2.0), timeout=0.2)
    assert (rec.end, rec.error, rec.after_end_bytes) == ("complete", None, 10)
    assert rec.reads[-1].t - rec.head_t >= 0.8


# --- the tolerant fallback ------------------------------------------------------------------------

def test_seed_doubled_transfer_encoding_recovers_body_and_timing():
    rec, _ = run([SEED_HEAD + chunk(b"<h2>Prepare for Launch!</h2>") + chunk(b"<ul>"), SYNC, Pause(PAUSE),
                  chunk(b"<li>Liftoff in 1...</li>"), SYNC, Pause(PAUSE), b"0\r\n\r\n"])
    assert rec.parser == "tolerant" and "Transfer-Encoding" in rec.strict_error
    assert (rec.status, rec.framing, rec.end, rec.error) == (200, "chunked", "complete", None)
    assert rec.header_list("transfer-encoding") == ["chunked", "chunked"]
    assert rec.body == b"<h2>Prepare for Launch!</h2><ul><li>Liftoff in 1...</li>"
    assert [(p.offset, p.size, p.chunk_start, p.chunk_end) for p in rec.pieces] == [
        (0, 28, True, True), (28, 4, True, True), (32, 24, True, True)]
    assert rec.framing_notes == []
    assert_times_increase(rec)
    assert rec.pieces[2].t - rec.pieces[1].t >= APART
    # the end is when the last-chunk came, not when the last data did
    assert rec.end_t - rec.pieces[2].t >= APART


def test_bare_lf_chunks_stall_h11_so_the_tolerant_reading_takes_over_while_streaming():
    # h11 waits for a CRLF that never comes; the recording must still have the body and its times
    rec, _ = run([OK_CHUNKED + b"5\nhello\n", SYNC, Pause(PAUSE), b"5\nworld\n", HOLD], timeout=0.5)
    assert rec.parser == "tolerant" and rec.strict_error.startswith("h11 cannot read past body byte 0")
    assert rec.end == "timeout" and rec.body == b"helloworld"
    assert "chunk-size line ends with a bare LF instead of CRLF" in rec.framing_notes
    assert rec.pieces[1].t - rec.pieces[0].t >= APART


def test_unchunked_body_under_chunked_header_is_read_close_delimited():
    rec, _ = run([OK_CHUNKED + b"<h2>not chunked</h2>", SYNC, Pause(PAUSE), b"<p>more</p>", CLOSE])
    assert rec.parser == "tolerant" and rec.end == "closed"
    assert rec.body == b"<h2>not chunked</h2><p>more</p>"
    assert any(n.startswith("invalid chunk-size line") for n in rec.framing_notes)


# --- how recordings end ---------------------------------------------------------------------------

def test_cut_short_chunked():
    rec, _ = run([OK_CHUNKED + chunk(b"hello"), SYNC, CLOSE])
    assert rec.end == "cut-short" and rec.body == b"hello" and rec.error is None
    assert "connection closed before the last-chunk" in rec.framing_notes
    assert rec.strict_error and "incomplete chunked read" in rec.strict_error


def test_cut_short_content_length():
    rec, _ = run([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", SYNC, CLOSE])
    assert rec.end == "cut-short" and rec.body_bytes == 5 and rec.error is None


def test_reset_mid_chunk():
    rec, _ = run([OK_CHUNKED + b"a\r\n01234", SYNC, RESET])
    assert rec.end == "reset" and rec.body == b"01234" and rec.error is None
    assert any("ConnectionResetError" in n for n in rec.framing_notes)


def test_idle_timeout_mid_body():
    t0 = time.monotonic()
    rec, _ = run([OK_CHUNKED + chunk(b"hello"), HOLD], timeout=0.3)
    assert (rec.end, rec.error, rec.body) == ("timeout", None, b"hello")
    assert rec.end_t - rec.pieces[0].t >= 0.25
    assert time.monotonic() - t0 < 5


def test_timeout_before_head_is_an_error():
    rec, _ = run([HOLD], timeout=0.2)
    assert rec.end == "timeout" and rec.error == "no response head within 0.2 s" and rec.status is None


def test_deadline_stops_a_trickle():
    trickle = []
    for _ in range(100):
        trickle += [chunk(b"x"), Pause(0.05)]
    t0 = time.monotonic()
    rec, _ = run([OK_CHUNKED] + trickle, timeout=2.0, deadline=0.5)
    assert rec.end == "deadline" and rec.error is None and rec.body_bytes >= 1
    assert 0.2 <= rec.end_t < 2.0 and time.monotonic() - t0 < 5


def test_closed_before_head():
    rec, _ = run([CLOSE])
    assert rec.end == "closed" and rec.error == "the connection closed before a response head"


def test_garbage_is_refused_at_once():
    t0 = time.monotonic()
    rec, _ = run([b"SSH-2.0-OpenSSH_9.6\r\n", HOLD], timeout=5.0)
    assert rec.end == "abandoned" and rec.error.startswith("not an HTTP/1.x response")
    assert "SSH-2.0" in rec.error and "\n" not in rec.error
    assert time.monotonic() - t0 < 3


def test_oversized_head_is_abandoned():
    lines = b"".join(b"X-Filler-%06d: %s\r\n" % (i, b"v" * 40) for i in range(2000))
    rec, _ = run([b"HTTP/1.1 200 OK\r\n" + lines, HOLD], timeout=5.0)
    assert rec.end == "abandoned" and rec.error and "head" in rec.error.lower()


# --- failures before any byte ---------------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused():
    rec = record(f"http://127.0.0.1:{closed_port()}/x", timeout=2)
    assert rec.error.startswith("connection refused by 127.0.0.1:") and rec.end is None and rec.reads == []


def test_dns_failure(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, *a, **kw):
        if host == "nonexistent.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    rec = record("http://nonexistent.invalid/x", timeout=2)
    assert rec.error == "DNS lookup failed for nonexistent.invalid: Name or service not known"


@pytest.mark.parametrize("url", ["ftp://example.org/", "http:///path", "http://host:99999/", "http://host:0/",
                                 "http://host/a b", "http://host/a\x00b", "http://[::1/", "example.org/x"])
def test_bad_url(url):
    with pytest.raises(BadURL):
        record(url)


def test_a_bad_url_is_shown_without_its_password():
    with pytest.raises(BadURL) as e:
        parse_url("http://alice:pa55word@host:99999/")
    assert "pa55word" not in str(e.value) and "http://***@host:99999/" in str(e.value)


def test_url_forms():
    assert parse_url("http://h/caf\u00e9?q=\u00e9").target == "/caf%C3%A9?q=%C3%A9"
    assert parse_url("https://b\u00fccher.example/").host == "xn--bcher-kva.example"
    ep = parse_url("http://[::1]:8080")
    assert (ep.host, ep.port, ep.target, ep.authority) == ("::1", 8080, "/", "[::1]:8080")
    assert parse_url("https://h/").authority == "h" and parse_url("http://h:81/").authority == "h:81"


def test_header_injection_is_refused_before_connecting():
    ex = Exchange(headers=[("X-Evil", "a\r\nInjected: 1")])
    rec = record(f"http://127.0.0.1:{closed_port()}/x", ex, timeout=2)
    assert rec.error.startswith("the request cannot be written") and rec.connect_s is None


# --- caps and secrets -----------------------------------------------------------------------------

def test_raw_and_body_caps(monkeypatch):
    monkeypatch.setattr(recorder, "RAW_KEEP", 100)
    monkeypatch.setattr(recorder, "BODY_KEEP", 50)
    body = bytes(range(256)) * 4
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + body
    rec, _ = run([wire])
    assert rec.end == "complete" and rec.body_bytes == 1024 and rec.body == body[:50]
    assert rec.raw == wire[:100] and rec.raw_bytes == len(wire)


@pytest.mark.parametrize("head", [OK_CHUNKED, SEED_HEAD], ids=["h11", "tolerant"])
def test_reads_and_pieces_caps(monkeypatch, head):
    monkeypatch.setattr(recorder, "READS_KEEP", 3)
    monkeypatch.setattr(recorder, "PIECES_KEEP", 3)
    monkeypatch.setattr(tolerant, "PIECES_KEEP", 3)
    monkeypatch.setattr(tolerant, "BODY_KEEP", 4)
    monkeypatch.setattr(recorder, "BODY_KEEP", 4)
    script = [head + chunk(b"0"), SYNC]
    for k in range(1, 6):
        script += [chunk(b"%d" % k), SYNC]
    rec, _ = run(script + [b"0\r\n\r\n"])   # 7 reads: one per SYNC, and the last-chunk
    assert rec.end == "complete" and rec.body_bytes == 6 and rec.body == b"0123"
    assert len(rec.reads) == 3 and rec.reads_dropped == 4
    assert len(rec.pieces) == 3 and rec.pieces_dropped == 3
    assert rec.pieces == [Piece(rec.pieces[k].t, k, 1, True, True) for k in range(3)]


def test_secret_headers_are_redacted_but_sent():
    ex = Exchange(headers=[("Authorization", "Bearer s3cret"), ("X-Api-Key", "k3y"), ("Cookie", "c00kie")])
    rec, srv = run([b"HTTP/1.1 204 No Content\r\n\r\n"], ex, secret_headers=("x-api-key",))
    assert b"Authorization: Bearer s3cret\r\n" in srv.request and b"X-Api-Key: k3y\r\n" in srv.request
    sent = dict((k, v) for k, v in rec.request_headers)
    assert sent["Authorization"] == sent["X-Api-Key"] == sent["Cookie"] == REDACTED
    assert sent["Host"] == f"127.0.0.1:{srv.port}"
    text = rec.to_json()
    assert "s3cret" not in text and "k3y" not in text and "c00kie" not in text
    assert Recording.from_dict(json.loads(text)) == rec
    assert (rec.status, rec.framing, rec.end) == (204, "none", "complete")


# --- TLS ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    pytest.importorskip("cryptography")
    return make_tls(tmp_path_factory.mktemp("tls"), "localhost")


def tls_server(ctx, script, names):
    ctx.sni_callback = lambda sslobj, name, _ctx: names.append(name)
    return ScriptedServer(script, tls=ctx)


def test_tls_verification_failure_is_a_clear_error(tls_files):
    ctx, _ca = tls_files
    names: list = []
    with tls_server(ctx, [OK_CHUNKED, HOLD], names) as srv:
        rec = record(srv.url("/x", host="localhost"), timeout=5)
    assert rec.error.startswith("TLS certificate verification failed for localhost:")
    assert "--insecure" in rec.error and "\n" not in rec.error
    assert rec.tls is None and rec.reads == []


def test_tls_insecure_records(tls_files):
    ctx, _ca = tls_files
    names: list = []
    with tls_server(ctx, [OK_CHUNKED + chunk(b"hello") + b"0\r\n\r\n", HOLD], names) as srv:
        rec = record(srv.url("/x", host="localhost"), timeout=5, insecure=True)
    assert rec.error is None and (rec.parser, rec.end, rec.body) == ("h11", "complete", b"hello")
    assert rec.tls["version"].startswith("TLS") and rec.tls["alpn"] == "http/1.1" and rec.tls["cipher"]
    assert names == ["localhost"]
    assert srv.request.startswith(b"GET /x HTTP/1.1\r\nHost: localhost:%d\r\n" % srv.port)


def test_tls_verified_by_name_and_by_ip(tls_files, monkeypatch):
    ctx, ca = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # what ssl.create_default_context() trusts
    for host, sni in (("localhost", "localhost"), ("127.0.0.1", None)):
        names: list = []
        with tls_server(ctx, [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", HOLD], names) as srv:
            rec = record(srv.url("/", host=host), timeout=5)
        assert rec.error is None and rec.body == b"ok", host
        assert names == [sni], "SNI carries the host name, never an IP address"


def test_tls_hostname_mismatch(tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    ctx, ca = make_tls(tmp_path, "other.example", ip=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    with ScriptedServer([HOLD], tls=ctx) as srv:
        rec = record(srv.url("/", host="localhost"), timeout=5)
    assert rec.error.startswith("TLS certificate verification failed for localhost: Hostname mismatch")


def test_tls_to_a_plain_server():
    with ScriptedServer([b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", CLOSE], read_request=False) as srv:
        rec = record(f"https://127.0.0.1:{srv.port}/", timeout=5, insecure=True)
    assert rec.error.startswith("TLS handshake with 127.0.0.1:") and "\n" not in rec.error
