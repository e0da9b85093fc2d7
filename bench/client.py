"""One client download, measured in a process of its own; prints one JSON line.

    python -m bench.client MODE URL

MODE is what reads the body:
  ``record``    the suite's recorder (``conformance.wire.recorder.record``), as the checks use it
  ``download``  the ``delivery.large-body`` reader (``conformance.scenarios.conditions.download``)
  ``h11``       a plain h11 read loop, as a first version would write it (the reference the
                recorder is measured against: 256 KiB reads copied to ``bytes``, each handed to
                h11 whole, events drained)
  ``raw``       ``recv_into`` a reused buffer and nothing else: the ceiling for any Python reader

The line holds ``bytes`` (body bytes), ``seconds`` (request to last byte, as curl's total
time), ``user``/``sys`` CPU seconds, ``hwm_mib`` (the process's peak resident memory, VmHWM)
and ``base_mib`` (its resident memory before the download, after the imports).
"""
from __future__ import annotations

import json
import resource
import socket
import sys
import time
from urllib.parse import urlsplit

READ = 256 * 1024


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def _connect(url: str):
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept-Encoding: identity\r\n\r\n"
                 % (parts.path.encode(), parts.hostname.encode(), parts.port))
    return sock


def plain_h11(url: str) -> tuple[int, str]:
    import h11
    conn = h11.Connection(h11.CLIENT)
    parts = urlsplit(url)
    conn.send(h11.Request(method="GET", target=parts.path, headers=[("Host", parts.netloc)]))
    conn.send(h11.EndOfMessage())
    sock = _connect(url)
    body, end = 0, "closed"
    try:
        while True:
            data = sock.recv(READ)
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    break
                if isinstance(event, h11.Data):
                    body += len(event.data)
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return body, "complete"
            if not data:
                return body, end
    finally:
        sock.close()


def raw(url: str) -> tuple[int, str]:
    """Counts every byte after the head; the server closes after the response."""
    sock = _connect(url)
    buf = bytearray(READ)
    total, head = 0, b""
    try:
        while True:
            n = sock.recv_into(buf)
            if not n:
                break
            if head is not None:
                head += bytes(buf[:n])
                end = head.find(b"\r\n\r\n")
                if end < 0:
                    continue
                total += len(head) - end - 4
                head = None
            else:
                total += n
    finally:
        sock.close()
    return total, "closed"   # wire bytes of the body (framing included)


def main(argv: list[str]) -> int:
    mode, url = argv[0], argv[1]
    if mode == "record":
        from conformance.wire.recorder import record
    elif mode == "download":
        from conformance.scenarios.conditions import download
        from conformance.wire.recorder import Exchange
    else:
        import h11  # noqa: F401  (imported before the baseline, as the others)
    base = _status_mib("VmRSS:")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    extra = {}
    if mode == "record":
        rec = record(url, timeout=60, deadline=3600)
        n, end = rec.body_bytes, rec.end
        extra = {"parser": rec.parser, "reads": len(rec.reads) + rec.reads_dropped,
                 "pieces": len(rec.pieces) + rec.pieces_dropped, "error": rec.error}
    elif mode == "download":
        dl = download(url, Exchange("large"), timeout=60, deadline=3600)
        n, end = dl.primary.body_bytes, dl.primary.end
    elif mode == "h11":
        n, end = plain_h11(url)
    elif mode == "raw":
        n, end = raw(url)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"mode": mode, "bytes": n, "end": end, "seconds": seconds,
                      "user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
                      "hwm_mib": _status_mib("VmHWM:"), "base_mib": base, **extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
