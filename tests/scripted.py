"""A scripted TCP (or TLS) server for the recorder's own tests.

``ScriptedServer(script)`` listens on 127.0.0.1 (port 0), accepts one connection, reads the
request head, then plays its script: ``bytes`` are sent, ``Pause(s)`` waits, ``SYNC`` waits
until the recorder has read everything sent so far (see ``ClientReads``), ``CLOSE`` closes,
``RESET`` closes with an RST (SO_LINGER 0), ``HOLD`` keeps the connection open until the client
or the test goes away. A script that ends otherwise closes the connection. It is a context
manager and always stops its thread on exit.

Waits are on events, not sleeps: ``Pause`` is the one deliberate delay, and ``SYNC`` exists so
that a test asserting separate reads never depends on the scheduler (two pieces sent 50 ms
apart are still read as one if the reader is late; after ``SYNC`` they cannot be).
"""
from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass

CLOSE, RESET, HOLD, SYNC = "close", "reset", "hold", "sync"
GIVE_UP_S = 10.0   # no wait of the server's lasts longer (a broken test must not hang)


@dataclass(frozen=True)
class Pause:
    seconds: float


class ClientReads:
    """Counts the bytes the recorder reads, by wrapping the socket ``record()`` connects with.

    Use ``with ClientReads.installed() as reads:`` (plain TCP only: TLS needs the real socket)
    and pass ``client_reads=reads`` to the server so that its ``SYNC`` steps can wait on it."""

    def __init__(self):
        self.total = 0
        self._cond = threading.Condition()

    def add(self, n: int) -> None:
        with self._cond:
            self.total += n
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = GIVE_UP_S) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.total >= n, timeout)

    @classmethod
    def installed(cls):
        return _Installed(cls())


class _CountingSocket:
    def __init__(self, sock: socket.socket, reads: ClientReads):
        self._sock, self._reads = sock, reads

    def recv_into(self, buf, *args):
        n = self._sock.recv_into(buf, *args)
        self._reads.add(n)
        return n

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Installed:
    def __init__(self, reads: ClientReads):
        self.reads = reads

    def __enter__(self) -> ClientReads:
        self._real = socket.create_connection

        def create_connection(*args, **kw):
            return _CountingSocket(self._real(*args, **kw), self.reads)

        socket.create_connection = create_connection
        return self.reads

    def __exit__(self, *exc) -> None:
        socket.create_connection = self._real


class ScriptedServer:
    def __init__(self, script, *, tls: ssl.SSLContext | None = None, read_request: bool = True,
                 client_reads: ClientReads | None = None, host: str = "127.0.0.1"):
        self.script, self.tls, self.read_request, self.client_reads = list(script), tls, read_request, client_reads
        self.listener = socket.create_server((host, 0))
        self.host, self.port = host, self.listener.getsockname()[1]
        self.request = b""                    # the request head as received
        self.request_seen = threading.Event()
        self.finished = threading.Event()     # the script has run (or failed)
        self.error: BaseException | None = None  # what stopped the script early, if anything
        self.sent = 0
        self.send_times: list[float] = []     # time.monotonic() after each send
        self._stop = threading.Event()
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="scripted-server", daemon=True)

    def url(self, path: str = "/", host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    # --- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for s in (self._conn, self.listener):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() or recv()
                except OSError:
                    pass
        self._thread.join(GIVE_UP_S)
        self.listener.close()
        assert not self._thread.is_alive(), "the scripted server did not stop"

    # --- the server thread --------------------------------------------------------------------
    def _run(self) -> None:
        conn = None
        try:
            self.listener.settimeout(GIVE_UP_S)
            conn, _ = self.listener.accept()
            conn.settimeout(GIVE_UP_S)
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self._conn = conn
            if self._stop.is_set():
                return
            if self.read_request:
                self._read_request(conn)
            self._play(conn)
        except (OSError, ValueError) as e:  # the client went away, or the test stopped us
            self.error = e
        finally:
            self.request_seen.set()
            if conn is not None:
                conn.close()
            self.finished.set()

    def _read_request(self, conn) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
        self.request = buf
        self.request_seen.set()

    def _play(self, conn) -> None:
        for step in self.script:
            if self._stop.is_set():
                return
            if isinstance(step, (bytes, bytearray)):
                conn.sendall(step)
                self.sent += len(step)
                self.send_times.append(time.monotonic())
            elif isinstance(step, Pause):
                self._stop.wait(step.seconds)
            elif step == SYNC:
                assert self.client_reads is not None, "SYNC needs client_reads"
                if not self.client_reads.wait_for(self.sent):
                    raise TimeoutError("the client did not read what was sent")
            elif step == CLOSE:
                return
            elif step == RESET:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            elif step == HOLD:
                while not self._stop.is_set() and conn.recv(65536):
                    pass
                return
            else:
                raise ValueError(f"unknown step {step!r}")


def make_tls(tmp_path, hostname: str = "localhost", ip: bool = True):
    """A self-signed certificate for ``hostname`` (and 127.0.0.1 when ``ip``): (server context,
    the certificate's file, which a client trusts as its CA)."""
    from conformance.targets.tlscert import write_self_signed

    cert_file, key_file = write_self_signed(tmp_path, hostname, ips=ip)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx, cert_file
