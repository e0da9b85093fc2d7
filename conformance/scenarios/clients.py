"""Scenarios driven by the clients users run: httpx, requests (urllib3) and Node's built-in fetch
(undici), each used as its users use it, with its own default headers (its own Accept-Encoding)
and its own way of handing the body to the caller.

Each scenario returns a ``ClientRun``: plain data whose ``primary`` is a ``Recording`` of what
the *caller* got (every piece is one thing the client handed over, at the time it did: an SSE
event, an NDJSON line, or a run of decoded bytes), so the suite's own delivery judges
(``delivery.first-byte``, ``delivery.progressive``) judge it as they judge the wire. Beside it:

- ``wire``: the same exchange as the client's transport received it (httpx: each raw piece as it
  leaves httpcore; requests: every ``recv`` on its socket, parsed again with h11), content coding
  kept. Bytes on time there but late to the caller were held by the client library itself.
- ``reference``: the raw recorder's own GET of the target (``Accept-Encoding: identity``),
  when the run recorded one, for the lag of each event behind it and to tell a hold under a
  content coding from one that is the server's.

Nothing here judges (``conformance/checks/test_clients.py`` does).
"""
from __future__ import annotations

import base64

import io
import json
import os
import shutil
import socket
import subprocess
import ssl
import time
import warnings
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import h11
import httpx

from conformance.scenarios.base import READ_BUDGET, Context, Scenario, register
from conformance.scenarios.conditions import _Primary
from conformance.wire.codings import KNOWN as DECODABLE
from conformance.wire.codings import content_codings, decoded
from conformance.wire.recorder import ABORTED, INTERRUPTED, per_ca_bundle, register_socket
from conformance.wire.recording import BODY_KEEP, PIECES_KEEP, RAW_KEEP, Recording, redact

NODE_HINT = "apt-get install nodejs"
# Pieces the caller got less than this apart are kept as one (requests' default iter_content()
# hands over one byte at a time); far below any burst gap, so no verdict can depend on it.
MERGE_S = 0.001


@dataclass
class ClientRun(_Primary):
    """One client's reading of the target: the caller's view, the client's wire, the raw reference.
    What the catalogue reads of a recording (error, status, body, …) is the caller's view's."""
    scenario: str
    client: str                       # "httpx 0.28.1"
    api: str                          # how the body was read, as the caller writes it
    primary: Recording                # what the caller got, and when
    wire: Recording | None = None     # what the client's transport received, and when
    reference: Recording | None = None   # the raw recorder's GET (identity), when recorded
    skip: str | None = None           # the client is not installed
    hint: str = ""                    # what in the client's own use holds data back, and the fix
    target: Any = field(default=None, repr=False)
    _plain_wire: Any = field(default=None, repr=False)

    def request_header(self, name: str) -> str | None:
        return next((v for k, v in self.primary.request_headers if k.lower() == name.lower()), None)

    def plain_wire(self) -> tuple[Recording | None, str]:
        """The wire timeline with its content coding undone read by read (gzip only), and a note;
        None when there is none, or its coding is one the suite does not decode."""
        if self._plain_wire is None:
            wire, note = self.wire, ""
            if wire is not None and not wire.error:
                codings = content_codings(wire)
                if codings and all(c in DECODABLE for c in codings):
                    wire, notes = decoded(wire)
                    note = "; ".join(notes)
                elif codings:
                    wire, note = None, f"the wire's Content-Encoding {', '.join(codings)} is not decoded by the suite"
            else:
                wire = None
            self._plain_wire = (wire, note)
        return self._plain_wire

    def event_times(self) -> dict[str, list[float | None]]:
        """When each of the producer's writes (countdown group, SSE event, NDJSON line) reached the
        caller, the client's transport and the raw recorder (lists by write; None: not found)."""
        out: dict[str, list[float | None]] = {}
        if self.target is None:
            return out
        for name, rec in (("caller", self.primary), ("wire", self.plain_wire()[0]), ("raw", self.reference)):
            if rec is None or rec.error or not rec.pieces:
                continue
            d = self.target.delivery(rec)
            if d.group_times:
                out[name] = list(d.group_times)
        return out

    def to_dict(self) -> dict:
        d = self.primary.to_dict()
        d["scenario"] = self.scenario
        times = self.event_times()
        d["client"] = {"name": self.client, "api": self.api, "skip": self.skip, "hint": self.hint,
                       "event_times": {k: [None if t is None else round(t, 4) for t in v] for k, v in times.items()}}
        return d


def _request_of(ctx: Context) -> tuple[str, bytes | None]:
    """The target's request (method, body) as each client sends it (``conformance.request``)."""
    return getattr(ctx.target, "method", "GET"), getattr(ctx.target, "body", None)


def _client_run(ctx: Context, scenario: str, client: str, api: str, headers, parser: str) -> ClientRun:
    rec = Recording(scenario, ctx.url, request_headers=redact(list(headers), ctx.secret_headers), parser=parser)
    return ClientRun(scenario, client, api, rec, target=ctx.target)


def _reference(ctx: Context) -> Recording | None:
    """The raw recorder's GET of the same target, when this run made one."""
    rec = ctx.recorded("get") if ctx.recorded else None
    return rec if isinstance(rec, Recording) and not rec.error else None


class _Body:
    """Builds a recording's pieces and kept body as the caller gets them."""

    def __init__(self, rec: Recording, t0: float):
        self.rec, self.t0, self.kept = rec, t0, bytearray()

    def add(self, data: bytes, merge: bool = False) -> float:
        rec = self.rec
        t = time.monotonic() - self.t0
        if not data:
            return t
        if merge and rec.pieces and t - rec.pieces[-1].t < MERGE_S:
            rec.pieces.grow_last(len(data), False)
        elif len(rec.pieces) < PIECES_KEEP:
            rec.pieces.add(t, rec.body_bytes, len(data))
        else:
            rec.pieces_dropped += 1
        rec.body_bytes += len(data)
        if len(self.kept) < BODY_KEEP:
            self.kept += data[:BODY_KEEP - len(self.kept)]
        return t

    def finish(self) -> None:
        self.rec.body_kept = bytes(self.kept).decode("latin-1")


def _sse_bytes(event) -> bytes:
    """An event as the caller got it, written back as an event stream (its data lines, then the
    blank line that dispatched it), so the suite's event finder sees one event per dispatch."""
    return b"".join(b"data: " + line.encode("utf-8") + b"\n" for line in event.data.split("\n")) + b"\n"


def _framing(headers) -> str:
    names = {k.lower(): v for k, v in headers}
    if "transfer-encoding" in names:
        return "chunked" if names["transfer-encoding"].strip().lower() == "chunked" else "transfer-coded"
    return "content-length" if "content-length" in names else "close"


# --- httpx ------------------------------------------------------------------------------------

class _TimedStream(httpx.SyncByteStream):
    """httpx's raw response stream, each piece timestamped as it leaves the transport: the
    client's wire, before httpx decodes, splits into lines or parses events."""

    def __init__(self, inner, body: _Body):
        self.inner, self.body = inner, body

    def __iter__(self):
        for data in self.inner:
            self.body.add(data)
            yield data

    def close(self) -> None:
        self.inner.close()


# httpx's own default TLS context (``httpx.create_ssl_context``: the CA bundle it would load,
# ``SSL_CERT_FILE`` honoured), shared by the run's httpx clients (``recorder.per_ca_bundle``): each
# ``httpx.Client()`` otherwise makes its own, even for an http:// URL, and with ten targets' clients
# started at once on this 2-core machine the suite's process stood still for up to 2.8 s.
_httpx_tls = per_ca_bundle(lambda insecure: httpx.create_ssl_context(verify=not insecure))


def record_httpx(ctx: Context) -> ClientRun:
    """GET with httpx as its users run it: its own default headers (``Accept-Encoding: gzip,
    deflate``, and br/zstd when their decoders are installed), and the body read the way the
    profile is read by callers: ``iter_bytes()`` (decoded), ``iter_lines()`` for NDJSON,
    httpx-sse's ``connect_sse`` / ``iter_sse()`` events for SSE. An exception from httpx is kept
    verbatim in ``strict_error``: that is the finding, not a failure to record."""
    profile = ctx.target.profile
    api = {"sse": "httpx_sse.connect_sse(...).iter_sse()", "ndjson": "Response.iter_lines()"}.get(
        profile, "Response.iter_bytes()")
    run = _client_run(ctx, "httpx", f"httpx {httpx.__version__}", api, ctx.target.headers, "httpx")
    rec = run.primary
    run.reference = _reference(ctx)
    timeout = httpx.Timeout(ctx.timeout)
    start = time.monotonic()
    try:
        with httpx.Client(http1=True, http2=False, verify=_httpx_tls(ctx.target.insecure), timeout=timeout,
                          follow_redirects=False) as client:
            marks: dict[str, float] = {}

            def trace(name, info):  # httpcore's hooks: when the TCP connect and the request end
                marks[name] = time.monotonic()

            method, content = _request_of(ctx)
            kw = dict(headers=list(ctx.target.headers), extensions={"trace": trace}, content=content)
            # what httpx will send (its defaults, then the target's), until the request says
            sent = client.build_request(method, ctx.url, headers=list(ctx.target.headers), content=content).headers.raw
            rec.request_headers = redact([[k.decode("latin-1"), v.decode("latin-1")] for k, v in sent],
                                         ctx.secret_headers)
            if profile == "sse":
                import httpx_sse
                opened = httpx_sse.connect_sse(client, method, ctx.url, headers=dict(ctx.target.headers),
                                               extensions={"trace": trace}, content=content)
            else:
                opened = client.stream(method, ctx.url, **kw)
            t0 = time.monotonic()
            with opened as stream:
                response = stream.response if profile == "sse" else stream
                if "connection.connect_tcp.started" in marks and "connection.connect_tcp.complete" in marks:
                    rec.connect_s = marks["connection.connect_tcp.complete"] - marks["connection.connect_tcp.started"]
                # times count from the request's last byte, as in the wire recorder
                t0 = marks.get("http11.send_request_body.complete", t0)
                rec.request_headers = redact([[k.decode("latin-1"), v.decode("latin-1")]
                                              for k, v in response.request.headers.raw], ctx.secret_headers)
                rec.head_t = time.monotonic() - t0
                rec.status, rec.reason = response.status_code, response.reason_phrase
                rec.http_version = response.http_version.removeprefix("HTTP/")
                rec.headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers.raw]
                rec.framing = _framing(rec.headers)
                _register_stream(response)   # an interrupt shuts its socket down (recorder.abort_all)
                wire = run.wire = Recording("httpx-wire", ctx.url, request_headers=rec.request_headers,
                                            connect_s=rec.connect_s, head_t=rec.head_t, status=rec.status,
                                            reason=rec.reason, http_version=rec.http_version,
                                            headers=rec.headers, framing=rec.framing, parser="httpx")
                wire_body, body = _Body(wire, t0), _Body(rec, t0)
                response.stream = _TimedStream(response.stream, wire_body)
                if profile == "sse":
                    items = (_sse_bytes(e) for e in stream.iter_sse())
                elif profile == "ndjson":
                    items = (line.encode("utf-8") + b"\n" for line in response.iter_lines())
                else:
                    items = response.iter_bytes()
                try:
                    for data in items:
                        t = body.add(data)
                        if time.monotonic() - start > ctx.deadline:
                            rec.end = wire.end = "deadline"
                            rec.end_t = wire.end_t = t
                            break
                        if ctx.watch and t >= ctx.watch:   # --watch: an endless stream is judged on what came
                            rec.end = wire.end = "watched"
                            rec.end_t = wire.end_t = t
                            break
                        if max(wire.body_bytes, rec.body_bytes) >= READ_BUDGET:   # far more than a stream explains
                            rec.end = wire.end = "budget"
                            rec.end_t = wire.end_t = t
                            break
                    else:   # a body ended by a close: the interrupt's shutdown looks like one
                        rec.end = wire.end = INTERRUPTED if ABORTED.is_set() else "complete"
                        rec.end_t = wire.end_t = time.monotonic() - t0
                finally:
                    body.finish()
                    wire_body.finish()
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        if rec.status is None:
            rec.error = f"httpx could not connect: {e}"
        else:
            rec.strict_error, rec.end = f"{type(e).__name__}: {e}", "error"
    except httpx.HTTPError as e:
        if not _interrupted(run, start):
            rec.strict_error = f"{type(e).__name__}: {e}"
            rec.end = rec.end or ("timeout" if isinstance(e, httpx.TimeoutException) else "error")
    except Exception as e:  # noqa: BLE001 - httpx-sse's SSEError, a decoder's own error: the finding
        if type(e).__name__ != "SSEError" and not isinstance(e, (UnicodeError, ValueError)):
            raise
        if not _interrupted(run, start):
            rec.strict_error, rec.end = f"{type(e).__name__}: {e}", rec.end or "error"
    return run


def _register_stream(response) -> None:
    """Let an interrupt shut the response's socket down (httpcore names it, when it can)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None and not register_socket(sock):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _interrupted(run, start: float) -> bool:
    """Whether a client's error came from the run's interrupt (its socket shut down): the
    recording then ends ``interrupted`` with what it had, and the error is not a finding."""
    if not ABORTED.is_set():
        return False
    for rec in (run.primary, getattr(run, "wire", None)):
        if rec is not None and rec.end is None:
            rec.end, rec.end_t = INTERRUPTED, time.monotonic() - start
    return True


# --- requests ---------------------------------------------------------------------------------

class _WireLog:
    """Every ``recv`` on the client's socket: (monotonic time, bytes), up to ``RAW_KEEP`` bytes."""

    def __init__(self):
        self.reads: list[tuple[float, bytes]] = []
        self.kept = 0
        self.sent_at: float | None = None
        self.connect_s: float | None = None

    def read(self, t: float, data: bytes) -> None:
        if self.kept < RAW_KEEP:
            self.reads.append((t, data))
            self.kept += len(data)


class _TimedRaw(socket.SocketIO):
    """The raw file http.client reads a response from (as ``socket.makefile`` makes it, sharing
    the socket's reference count), each ``recv`` logged."""

    def __init__(self, sock, log: _WireLog):
        super().__init__(sock, "rb")
        self.log = log

    def readinto(self, b) -> int:
        n = super().readinto(b)
        if n:
            self.log.read(time.monotonic(), bytes(memoryview(b)[:n]))
        return n


class _TimedSocket:
    """A connected socket whose reads (through ``makefile``, as http.client reads) are logged."""

    def __init__(self, sock, log: _WireLog):
        self._sock, self._log = sock, log

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data, *args):
        result = self._sock.sendall(data, *args)
        self._log.sent_at = time.monotonic()
        return result

    def makefile(self, mode="r", *args, **kw):
        if "r" in mode and "b" in mode:
            self._sock._io_refs += 1   # as socket.makefile: closing the socket waits for its files
            return io.BufferedReader(_TimedRaw(self._sock, self._log))
        return self._sock.makefile(mode, *args, **kw)


def _timed_adapter(log: _WireLog):
    """A requests transport adapter whose connections log their socket's reads."""
    import urllib3
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def timed(base):
        class Timed(base):
            def _new_conn(self):
                t = time.monotonic()
                sock = super()._new_conn()
                log.connect_s = time.monotonic() - t
                return sock

            def connect(self):
                super().connect()
                if not register_socket(self.sock):   # an interrupt shuts it down
                    self.sock.shutdown(socket.SHUT_RDWR)
                self.sock = _TimedSocket(self.sock, log)
        return Timed

    class Pool(HTTPConnectionPool):
        ConnectionCls = timed(HTTPConnection)

    class SPool(HTTPSConnectionPool):
        ConnectionCls = timed(HTTPSConnection)

        def _validate_conn(self, conn):
            # --insecure was asked for: urllib3's InsecureRequestWarning would only repeat it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                super()._validate_conn(conn)

    adapter = HTTPAdapter(max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SPool}
    return adapter


def replay_wire(log: _WireLog, t0: float, url: str, method: str = "GET", closed: bool = False) -> Recording | None:
    """The body as the socket received it, parsed again with h11: pieces at their reads' times
    (transfer coding removed, content coding kept). None when h11 cannot read it."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "replay")]))
    conn.send(h11.EndOfMessage())
    rec = Recording("requests-wire", url, parser="h11", connect_s=log.connect_s)
    body = bytearray()
    try:
        for t, data in log.reads + ([(log.reads[-1][0], b"")] if closed and log.reads else []):
            conn.receive_data(data)
            while True:
                ev = conn.next_event()
                if ev in (h11.NEED_DATA, h11.PAUSED):
                    break
                if isinstance(ev, h11.Response):
                    rec.head_t, rec.status, rec.reason = t - t0, ev.status_code, ev.reason.decode("latin-1")
                    rec.headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in ev.headers.raw_items()]
                    rec.http_version, rec.framing = ev.http_version.decode(), _framing(rec.headers)
                elif isinstance(ev, h11.Data):
                    if len(rec.pieces) < PIECES_KEEP:
                        rec.pieces.add(t - t0, rec.body_bytes, len(ev.data))
                    rec.body_bytes += len(ev.data)
                    if len(body) < BODY_KEEP:
                        body += ev.data[:BODY_KEEP - len(body)]
                elif isinstance(ev, (h11.EndOfMessage, h11.ConnectionClosed)):
                    rec.end, rec.end_t = "complete", t - t0
                    break
            if rec.end:
                break
    except h11.RemoteProtocolError:
        return None
    rec.body_kept = bytes(body).decode("latin-1")
    return rec


def record_requests(ctx: Context) -> ClientRun:
    """GET with requests as its users run it: ``stream=True``, its own default headers
    (``Accept-Encoding: gzip, deflate``), and ``iter_lines()`` (SSE, NDJSON) or ``iter_content()``
    with their default chunk sizes (512 and 1). The socket's reads are logged beside (``wire``)."""
    import requests
    import urllib3
    profile = ctx.target.profile
    lines = profile in ("sse", "ndjson")
    api = "Response.iter_lines()" if lines else "Response.iter_content()"
    run = _client_run(ctx, "requests", f"requests {requests.__version__} (urllib3 {urllib3.__version__})", api,
                      ctx.target.headers, "requests")
    rec = run.primary
    run.reference = _reference(ctx)
    log = _WireLog()
    session = requests.Session()
    adapter = _timed_adapter(log)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    start = time.monotonic()
    t0 = start
    response = None
    body = None
    try:
        method, content = _request_of(ctx)
        response = session.request(method, ctx.url, headers=dict(ctx.target.headers), data=content, stream=True,
                               timeout=(ctx.timeout, ctx.timeout), verify=not ctx.target.insecure,
                               allow_redirects=False)
        t0 = log.sent_at or t0
        rec.connect_s = log.connect_s
        rec.head_t = time.monotonic() - t0
        rec.request_headers = redact([[k, v] for k, v in response.request.headers.items()], ctx.secret_headers)
        rec.status, rec.reason = response.status_code, response.reason or ""
        rec.http_version = {10: "1.0", 11: "1.1"}.get(response.raw.version, str(response.raw.version))
        rec.headers = [[k, v] for k, v in response.raw.headers.items()]
        rec.framing = _framing(rec.headers)
        body = _Body(rec, t0)
        items = ((line + b"\n") for line in response.iter_lines()) if lines else response.iter_content()
        for data in items:
            t = body.add(data, merge=not lines)
            if time.monotonic() - start > ctx.deadline:
                rec.end, rec.end_t = "deadline", t
                break
            if ctx.watch and t >= ctx.watch:   # --watch: an endless stream is judged on what came
                rec.end, rec.end_t = "watched", t
                break
            if rec.body_bytes >= READ_BUDGET:   # far more than a stream's profile explains
                rec.end, rec.end_t = "budget", t
                break
        else:   # a body ended by a close: the interrupt's shutdown looks like one
            rec.end, rec.end_t = INTERRUPTED if ABORTED.is_set() else "complete", time.monotonic() - t0
        if lines and rec.framing != "chunked":
            run.hint = (f"requests' iter_lines() reads chunk_size=512 bytes at a time, and this body is not chunked "
                        f"({rec.framing}-delimited), so each read waits until 512 bytes (or the end) have arrived: "
                        "iter_lines(chunk_size=1), or reading response.raw.read1(), hands each line over as it "
                        "arrives (chunk_size=None reads a body that is not chunked to its end)")
    except requests.exceptions.ConnectionError as e:
        if _interrupted(run, start):
            pass
        elif response is None and not log.reads:
            rec.error = f"requests could not connect: {e}"
        else:
            rec.strict_error, rec.end = f"{type(e).__name__}: {e}", "error"
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as e:
        if not _interrupted(run, start):
            rec.strict_error, rec.end = f"{type(e).__name__}: {e}", rec.end or "error"
    finally:
        if body is not None:
            body.finish()
        if response is not None:
            response.close()
        session.close()
    if rec.status is not None:
        run.wire = replay_wire(log, t0, ctx.url, closed=rec.framing == "close")
    return run


# --- Node's fetch -----------------------------------------------------------------------------

def node_program() -> str | None:
    return shutil.which("node") or shutil.which("nodejs")


def _unreachable(code: str) -> bool:
    """Whether fetch's failure before the head is about reaching the server (a system error, DNS,
    TLS, a connect timeout, a bad URL), not about the response (llhttp's HPE_* parse errors, a
    close or reset before the head)."""
    if code.startswith("HPE_") or code in ("UND_ERR_SOCKET", "ECONNRESET", "UND_ERR_INFO"):
        return False
    return True


def record_node_fetch(ctx: Context) -> ClientRun:
    """GET with Node's built-in ``fetch`` (undici) reading ``response.body.getReader()``: a small
    script (``node_fetch.js``, package data) prints one JSON line per chunk with its time after
    the ``fetch()`` call."""
    node = node_program()
    run = _client_run(ctx, "node-fetch", "node fetch", "fetch(url).body.getReader().read()", ctx.target.headers,
                      "undici")
    rec = run.primary
    if node is None:
        run.skip = f"node is not installed ({NODE_HINT})"
        return run
    run.reference = _reference(ctx)
    script = resources.files(__package__).joinpath("node_fetch.js")
    method, content = _request_of(ctx)
    opts = {"headers": [list(h) for h in ctx.target.headers], "method": method,
            "body": None if content is None else base64.b64encode(content).decode("ascii"), "timeout": ctx.timeout, "deadline": ctx.deadline,
            "keep": BODY_KEEP, "watch": ctx.watch or 0, "budget": READ_BUDGET}
    env = dict(os.environ)
    if ctx.target.insecure:
        env["NODE_TLS_REJECT_UNAUTHORIZED"] = "0"
    started = time.monotonic()
    with resources.as_file(script) as path:
        proc = subprocess.Popen([node, str(path), ctx.url, json.dumps(opts)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, stdin=subprocess.DEVNULL)
        killer = _Kill(proc)   # an interrupt kills node: what it printed so far is kept
        if not register_socket(killer):
            proc.kill()
        try:
            out, err = proc.communicate(timeout=ctx.deadline + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            rec.error = "node did not finish within the recording's deadline"
            return run
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    lines = [json.loads(line) for line in done.stdout.decode("utf-8", "replace").splitlines() if line.startswith("{")]
    info = next((d for d in lines if d.get("kind") == "node"), {})
    run.client = f"node {info.get('version', '?')} fetch"
    if info and not info.get("fetch"):
        run.skip = f"node {info.get('version')} has no built-in fetch (Node 18 or later has it; {NODE_HINT})"
        return run
    if not lines:
        rec.error = f"node printed nothing (exit {done.returncode}): {done.stderr.decode('utf-8', 'replace')[-300:]}"
        return run
    if run.reference is not None:
        rec.connect_s = run.reference.connect_s   # the round trip of the same target, as the raw recorder measured it
    kept = bytearray()
    for d in lines:
        kind = d.get("kind")
        if kind == "head":
            rec.head_t, rec.status, rec.reason = d["t"], d["status"], d.get("reason", "")
            rec.headers = [[k, v] for k, v in d.get("headers", [])]
            rec.request_headers = redact([list(h) for h in d.get("sent", [])], ctx.secret_headers)
            rec.http_version, rec.framing = "1.1", _framing(rec.headers)
        elif kind == "chunk":
            if len(rec.pieces) < PIECES_KEEP:
                rec.pieces.add(d["t"], rec.body_bytes, d["n"])
            rec.body_bytes += d["n"]
            kept += d.get("data", "").encode("latin-1")
        elif kind == "end":
            rec.end, rec.end_t = d.get("how", "complete"), d["t"]
        elif kind == "error":
            cause = f" (cause: {d['cause']})" if d.get("cause") else ""
            if rec.status is None and d.get("connect") and _unreachable(str(d.get("code") or "")):
                rec.error = f"node fetch could not connect: {d.get('message')}{cause}"
            else:
                rec.strict_error = f"{d.get('name')}: {d.get('message')}{cause}"
                rec.end, rec.end_t = "timeout" if d.get("timeout") else "error", d.get("t")
    rec.body_kept = bytes(kept[:BODY_KEEP]).decode("latin-1")
    if ABORTED.is_set() and rec.end is None and rec.error is None:
        rec.end, rec.end_t = INTERRUPTED, time.monotonic() - started
    return run


class _Kill:
    """A client process as ``recorder.abort_all()`` stops it: ``shutdown`` kills it."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def shutdown(self, how=None) -> None:
        self.proc.kill()


register(Scenario("httpx", "the request with httpx as users run it (default headers, decoded iteration)", record_httpx,
                  modules=("httpx_sse",)))
register(Scenario("requests", "the request with requests as users run it (stream=True, iter_lines/iter_content)",
                  record_requests,
                  modules=("requests", "requests.adapters", "urllib3")))
register(Scenario("node-fetch", "the request with Node's built-in fetch reading the body stream", record_node_fetch))
