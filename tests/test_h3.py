"""delivery.h3: the content over HTTP/3 (QUIC), judged like delivery.h2.

The controls are the probe (SSE, 5 events 0.3 s apart) behind Debian's Caddy over HTTPS
(``targets/h3_targets.py``): streaming with HTTP/3 on (pass), with ``buffer_responses`` (held: warn,
fail under --strict), and with HTTP/3 off (no Alt-Svc: skip with the reason); an http:// target is a
skip known before anything is sent. Each verdict is asserted from the command line
(``python -m conformance URL --insecure``), as users run it. The recorder itself is tested against
an HTTP/3 echo origin made with aioquic's own server (the request's method, headers and body
carried), and against UDP ports where nothing or no QUIC answers.
"""
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated

from conformance.scenarios.budget import make_plan
from conformance.wire.h3 import alt_svc_h3, record_h3
from conformance.targets import launcher
from conformance.targets.registry import BUILTINS
from conformance.targets.tlscert import write_self_signed

ROOT = Path(__file__).resolve().parent.parent
SCALE, COUNT = 0.3, 5   # 5 SSE events 0.3 s apart
needs_caddy = pytest.mark.skipif(shutil.which("caddy") is None, reason="apt-get install caddy")


def run_cli(url: str, *args: str, report_dir: Path) -> tuple[subprocess.CompletedProcess, dict]:
    p = subprocess.run([sys.executable, "-m", "conformance", url, "--insecure", "--report-dir", str(report_dir), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in p.stdout + p.stderr, p.stdout[-3000:] + p.stderr[-3000:]
    return p, json.loads((report_dir / "results.json").read_text())


def result(doc: dict, check: str) -> dict:
    return next(r for r in doc["results"] if r["check"] == check)


@pytest.fixture(scope="module")
def caddy():
    """The three Caddy targets, started once: name -> URL of a 5-event SSE stream."""
    running, urls = [], {}
    try:
        for name in ("caddy-h3", "control-h3-buffered", "control-https-no-h3"):
            b = BUILTINS[name]
            server = launcher.start(name, list(b.argv), SCALE)
            running.append(server)
            urls[name] = f"https://127.0.0.1:{server.port}{b.url_path(COUNT, SCALE)}"
        yield urls
    finally:
        for server in running:
            server.stop()


# --- Alt-Svc (RFC 7838 §3) --------------------------------------------------------------------

@pytest.mark.parametrize("values, want", [
    (['h3=":443"; ma=86400'], (None, 443)),
    (['h3-29=":8443", h3=":9443"; ma=60; persist=1'], (None, 9443)),
    (['h2="alt.example:443", h3="alt.example:8443"'], ("alt.example", 8443)),
    (['h3="[::1]:4433"'], ("::1", 4433)),
    (["clear"], None),
    (['h3-29=":443"'], None),        # a draft is not RFC 9114's HTTP/3
    (['h3=":0"', 'h3="x:99999"'], None),
    (['quic=":443"'], None),
    ([], None),
])
def test_alt_svc_h3_reads_the_first_h3_alternative(values, want):
    assert alt_svc_h3(values) == want


# --- the controls, from the command line ------------------------------------------------------

@needs_caddy
def test_caddy_streaming_over_http3_passes(caddy, tmp_path):
    # delivery.h3 alone: no GET in the run, so the scenario reads Alt-Svc from a HEAD of its own
    p, doc = run_cli(caddy["caddy-h3"], "--check", "delivery.h3", report_dir=tmp_path)
    r = result(doc, "delivery.h3")
    assert r["verdict"] == "pass", r["observed"]
    assert p.returncode == 0
    assert f"{COUNT} events arrived in {COUNT} bursts" in r["observed"] and "ended complete" in r["observed"]
    rec = json.loads((tmp_path / r["recording"]).read_text())
    assert rec["http_version"] == "3" and rec["tls"]["alpn"] == "h3" and rec["request_version"] == "3"
    assert len(rec["pieces"]) >= COUNT                       # one DATA frame per event
    times = [piece[0] for piece in rec["pieces"]]
    assert times[-1] - times[0] > (COUNT - 1) * SCALE * 0.8    # spread over the producer's schedule
    assert any("HEAD's response offers it: Alt-Svc: h3=" in n for n in rec["framing_notes"])


@needs_caddy
def test_caddy_buffering_over_http3_is_held(caddy, tmp_path):
    url = caddy["control-h3-buffered"]
    p, doc = run_cli(url, "--check", "delivery.h3", "--check", "delivery.progressive", report_dir=tmp_path)
    r = result(doc, "delivery.h3")
    assert r["verdict"] == "warn", r["observed"]             # a SHOULD not met
    assert f"{COUNT} events arrived in 1 bursts" in r["observed"], r["observed"]
    rec = json.loads((tmp_path / r["recording"]).read_text())
    assert rec["http_version"] == "3"
    assert any("GET's response offers it" in n for n in rec["framing_notes"])   # read from the run's GET
    strict = tmp_path / "strict"
    p, doc = run_cli(url, "--check", "delivery.h3", "--strict", report_dir=strict)
    assert result(doc, "delivery.h3")["verdict"] == "fail" and p.returncode == 1


@needs_caddy
def test_https_without_alt_svc_h3_is_skip_with_the_reason(caddy, tmp_path):
    p, doc = run_cli(caddy["control-https-no-h3"], "--check", "delivery.h3", "--check", "delivery.h2",
                     report_dir=tmp_path)
    r = result(doc, "delivery.h3")
    assert r["verdict"] == "skip"
    assert "offers no HTTP/3: no Alt-Svc header" in r["observed"], r["observed"]
    assert result(doc, "delivery.h2")["verdict"] == "pass"     # the same server streams over HTTP/2


def test_an_http_target_is_skip_before_anything_is_sent(tmp_path):
    server = launcher.start("control-stream", ["{python}", "-m", "conformance.targets.controls", "stream", "{address}"], 0.05)
    try:
        url = f"http://127.0.0.1:{server.port}/3"
        p, doc = run_cli(url, "--check", "delivery.h3", report_dir=tmp_path)
        r = result(doc, "delivery.h3")
        assert r["verdict"] == "skip" and "not https" in r["observed"]
        assert p.returncode == 5   # no check ran
        rec = json.loads((tmp_path / r["recording"]).read_text())
        assert rec["reads"] == [] and rec["status"] is None      # nothing was sent
    finally:
        server.stop()


def test_the_plan_counts_the_http3_request():
    class T:
        id, method, url, max_requests = "t", "POST", "https://example.invalid/v1", None
    plan = make_plan(T(), ["get", "h3"])
    h3 = plan.to_dict()["scenarios"]["h3"]
    assert h3["requests"] == 1 and h3["methods"] == "POST over HTTP/3"
    alone = make_plan(T(), ["h3"]).to_dict()["scenarios"]["h3"]   # no GET to read Alt-Svc from
    assert alone["requests"] == 2 and alone["methods"] == "HEAD, then POST over HTTP/3"
    T.url = "http://example.invalid/v1"
    assert make_plan(T(), ["get", "h3"]).to_dict()["scenarios"]["h3"]["requests"] == 0


# --- the recorder against aioquic's own server -------------------------------------------------

class _Echo(QuicConnectionProtocol):
    """Answers each request with its method, fields and body as JSON, in two DATA frames 0.3 s apart."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.h3, self.requests = None, {}

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic)
        if self.h3 is None:
            return
        for e in self.h3.handle_event(event):
            if isinstance(e, HeadersReceived):
                self.requests[e.stream_id] = {"headers": [[k.decode(), v.decode()] for k, v in e.headers], "body": ""}
            elif isinstance(e, DataReceived):
                self.requests[e.stream_id]["body"] += e.data.decode()
            if getattr(e, "stream_ended", False):
                asyncio.ensure_future(self.answer(e.stream_id))

    async def answer(self, stream_id):
        request = self.requests.pop(stream_id)
        body = json.dumps(request).encode()
        self.h3.send_headers(stream_id, [(b":status", b"200"), (b"content-type", b"application/json")])
        if dict(request["headers"])[":path"] == "/open":   # one frame, then the stream stays open
            self.h3.send_data(stream_id, b"first", end_stream=False)
            self.transmit()
            return
        self.h3.send_data(stream_id, body[:10], end_stream=False)
        self.transmit()
        await asyncio.sleep(0.3)
        self.h3.send_data(stream_id, body[10:], end_stream=True)
        self.transmit()


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    """An HTTP/3 echo origin on 127.0.0.1 (UDP): its port."""
    cert, key = write_self_signed(tmp_path_factory.mktemp("h3cert"))
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(cert, key)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(serve("127.0.0.1", port, configuration=config, create_protocol=_Echo))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_the_request_is_carried_and_each_data_frame_timestamped(echo):
    rec = record_h3(f"https://localhost:{echo}/v1/chat?x=1", (None, echo), method="POST", body=b'{"q": "hi"}',
                    headers=[("Host", "ignored"), ("Connection", "keep-alive"), ("Content-Type", "application/json"),
                             ("Authorization", "Bearer s3cret")],
                    insecure=True, timeout=5, deadline=10, secret_headers=("authorization",))
    assert rec.error is None and rec.status == 200 and rec.end == "complete", (rec.error, rec.end, rec.framing_notes)
    got = json.loads(rec.body)
    fields = dict(got["headers"])
    assert fields[":method"] == "POST" and fields[":path"] == "/v1/chat?x=1" and fields[":scheme"] == "https"
    assert fields[":authority"] == f"localhost:{echo}"
    assert fields["content-type"] == "application/json" and fields["authorization"] == "Bearer s3cret"
    assert "host" not in fields and "connection" not in fields        # connection-specific (RFC 9114 §4.2)
    assert got["body"] == '{"q": "hi"}'
    assert ["authorization", "Bearer s3cret"] not in rec.request_headers   # redacted in the recording
    assert len(rec.pieces) == 2 and rec.pieces[1].t - rec.pieces[0].t >= 0.25   # each frame when it came
    assert rec.connect_s is not None and rec.connect_s < 1


def test_an_open_stream_ends_by_the_idle_timeout_or_the_watch(echo):
    idle = record_h3(f"https://localhost:{echo}/open", (None, echo), insecure=True, timeout=0.5, deadline=5)
    assert idle.end == "timeout" and idle.body == b"first" and idle.error is None
    start = time.monotonic()
    watched = record_h3(f"https://localhost:{echo}/open", (None, echo), insecure=True, timeout=5, deadline=5, watch=0.6)
    assert watched.end == "watched" and watched.body == b"first"
    assert 0.6 <= time.monotonic() - start < 4   # the watch, not the 5 s idle timeout or deadline


def test_verification_is_on_unless_insecure(echo):
    rec = record_h3(f"https://localhost:{echo}/", (None, echo), timeout=3, deadline=5)
    assert rec.error and "QUIC handshake" in rec.error and "--insecure" in rec.error, rec.error


def test_nothing_listening_on_udp_is_an_error():
    port = launcher.free_port()
    rec = record_h3(f"https://127.0.0.1:{port}/", (None, port), insecure=True, timeout=2, deadline=3)
    assert rec.error and "nothing answers QUIC" in rec.error, rec.error


def test_a_udp_port_that_never_answers_is_a_handshake_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        rec = record_h3(f"https://127.0.0.1:{port}/", (None, port), insecure=True, timeout=0.5, deadline=3)
    assert rec.error and "no QUIC handshake" in rec.error and "0.5 s" in rec.error, rec.error
