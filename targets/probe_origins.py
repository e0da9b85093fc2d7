"""The probe as a FastCGI responder, as php-fpm serves an app behind Apache's mod_proxy_fcgi.

``python -m targets.probe_origins fcgi FCGI_PORT HTTP_PORT`` serves ``conformance.probe.wsgi_app`` over
FastCGI on 127.0.0.1:FCGI_PORT (each write sent as its own FCGI_STDOUT record, at once, as a
PHP script that calls ``flush()`` does) and over HTTP on 127.0.0.1:HTTP_PORT (cheroot), so the
suite can record the same app directly as the chain's ``--reference``. The probe's timestamps
come from the one process clock either way.

A minimal FastCGI (1.0) responder: one request per connection unless the web server asks to keep
it (FCGI_KEEP_CONN), no multiplexing (Apache does not multiplex), roles other than RESPONDER
refused. Only what a local built-in target needs; not a general FastCGI server.
"""
from __future__ import annotations

import signal
import socketserver
import struct
import sys
import threading

from conformance.probe import wsgi_app

VERSION, BEGIN, ABORT, END, PARAMS, STDIN, STDOUT = 1, 1, 2, 3, 4, 5, 6
RESPONDER, KEEP_CONN = 1, 1
HEADER = struct.Struct("!BBHHBx")
MAX_RECORD = 65535


def _read_exact(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError
    return data


def _read_record(f) -> tuple[int, int, bytes]:
    _version, rtype, rid, length, padding = HEADER.unpack(_read_exact(f, HEADER.size))
    content = _read_exact(f, length)
    _read_exact(f, padding)
    return rtype, rid, content


def _record(rtype: int, rid: int, content: bytes = b"") -> bytes:
    out = []
    for i in range(0, max(1, len(content)), MAX_RECORD):
        part = content[i:i + MAX_RECORD]
        out.append(HEADER.pack(VERSION, rtype, rid, len(part), 0) + part)
    return b"".join(out)


def _length(data: bytes, i: int) -> tuple[int, int]:
    if data[i] < 128:
        return data[i], i + 1
    return struct.unpack("!I", data[i:i + 4])[0] & 0x7FFFFFFF, i + 4


def parse_params(data: bytes) -> dict[str, str]:
    out, i = {}, 0
    while i < len(data):
        nlen, i = _length(data, i)
        vlen, i = _length(data, i)
        name, value = data[i:i + nlen], data[i + nlen:i + nlen + vlen]
        i += nlen + vlen
        out[name.decode("latin-1")] = value.decode("latin-1")
    return out


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            while self._one():
                pass
        except (EOFError, ConnectionError, OSError):
            pass

    def _one(self) -> bool:
        params, rid, keep = b"", 0, False
        while True:   # FCGI_BEGIN_REQUEST, FCGI_PARAMS until empty, FCGI_STDIN until empty
            rtype, rid, content = _read_record(self.rfile)
            if rtype == BEGIN:
                role, flags = struct.unpack("!HB", content[:3])
                keep = bool(flags & KEEP_CONN)
                if role != RESPONDER:
                    self.wfile.write(_record(END, rid, struct.pack("!IB3x", 0, 3)))   # FCGI_UNKNOWN_ROLE
                    return keep
            elif rtype == PARAMS and content:
                params += content
            elif rtype == STDIN and not content:
                break
            elif rtype == ABORT:
                return False
        env = parse_params(params)
        environ = {k: v for k, v in env.items()}
        environ.update({"wsgi.input": self.rfile, "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http",
                        "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
                        "wsgi.run_once": False})
        # The path as the client asked it (Apache splits it into SCRIPT_NAME and PATH_INFO its own way).
        uri = env.get("REQUEST_URI") or env.get("SCRIPT_NAME", "") + env.get("PATH_INFO", "")
        environ.update({"SCRIPT_NAME": "", "PATH_INFO": uri.split("?", 1)[0],
                        "QUERY_STRING": env.get("QUERY_STRING", uri.partition("?")[2])})
        sent = []

        def start_response(status, headers, exc_info=None):
            head = f"Status: {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
            sent.append(head.encode("latin-1"))
            return lambda data: None

        body = wsgi_app(environ, start_response)
        try:
            for piece in body:
                if sent:
                    piece, sent[:] = sent[0] + piece, []
                if piece:
                    self.wfile.write(_record(STDOUT, rid, piece))
                    self.wfile.flush()
            if sent:
                self.wfile.write(_record(STDOUT, rid, sent[0]))
            self.wfile.write(_record(STDOUT, rid) + _record(END, rid, struct.pack("!IB3x", 0, 0)))
            self.wfile.flush()
        finally:
            close = getattr(body, "close", None)
            if close:
                close()
        return keep


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def fcgi(fcgi_port: int, http_port: int) -> int:
    from cheroot import wsgi
    fcgi = Server(("127.0.0.1", fcgi_port), Handler)
    http = wsgi.Server(("127.0.0.1", http_port), wsgi_app, numthreads=16, server_name="conformance-probe")

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=fcgi.serve_forever, daemon=True, name="fcgi").start()
    try:
        http.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        http.stop()
        fcgi.shutdown()
        fcgi.server_close()
    return 0


if __name__ == "__main__":
    ports = [int(a) for a in sys.argv[2:] if a.isdigit()]
    if sys.argv[1:2] == ["fcgi"] and len(sys.argv) == 4 and len(ports) == 2:
        sys.exit(fcgi(*ports))
    sys.exit("usage: python -m targets.probe_origins fcgi FCGI_PORT HTTP_PORT")
