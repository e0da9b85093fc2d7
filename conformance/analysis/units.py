"""The units of a body, found by their content: countdown groups, Server-Sent Events, NDJSON
records, and the reads that carried body bytes. Offsets are byte positions in the decoded body;
times come from the recording's pieces. The delivery analysis (``timing``) and the
schedule-free rule (``inferred``) both read a body through these.
"""
from __future__ import annotations

import re

from conformance.wire.recording import Recording

ITEM = re.compile(rb"Liftoff in\s*(\d+)", re.I)
LINE_END = re.compile(rb"\r\n|\n|\r")
FINALE = re.compile(rb"<h1>\s*Lift\s*off|Lift\s*off\s*</h1>", re.I)
OPENING = re.compile(rb"Prepare for Launch|<ul>", re.I)


def body_arrivals(rec: Recording) -> list[tuple[float, int]]:
    """(time, bytes) per read that carried body bytes."""
    out: list[tuple[float, int]] = []
    for p in rec.pieces:
        if not p.size:
            continue
        if out and out[-1][0] == p.t:
            out[-1] = (p.t, out[-1][1] + p.size)
        else:
            out.append((p.t, p.size))
    return out


def countdown_count(url_path: str) -> int | None:
    m = re.search(r"/(\d+)/?$", url_path.split("?")[0])
    return int(m.group(1)) if m else None


def countdown_group_offsets(body: bytes, count: int) -> list[int | None]:
    """Where each of the countdown's count+2 groups ends in the decoded body (None: not found)."""
    offsets: list[int | None] = [None] * (count + 2)
    m = OPENING.search(body)
    offsets[0] = m.end() - 1 if m else (0 if body else None)
    for m in ITEM.finditer(body):
        k = count - int(m.group(1)) + 1   # "Liftoff in N" is group 1, "in 1" is group N
        if 1 <= k <= count and offsets[k] is None:
            offsets[k] = m.end() - 1
    finale = list(FINALE.finditer(body))
    if finale:
        offsets[count + 1] = finale[-1].end() - 1
    return offsets


def sse_events(body: bytes) -> list[tuple[int, int]]:
    """Each Server-Sent Event in the body as (first byte of its block, last byte of the blank line
    that dispatches it) (HTML's event-stream interpretation: lines end in CRLF, LF or CR; a block
    dispatches an event only when it holds a ``data`` field; comments and ``retry`` alone do not)."""
    out: list[tuple[int, int]] = []
    pos = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    block_start, has_data = None, False
    for m in LINE_END.finditer(body, pos):
        line = body[pos:m.start()]
        if not line:
            if has_data:
                out.append((block_start, m.end() - 1))
            block_start, has_data = None, False
        elif not line.startswith(b":"):   # a comment neither opens nor fills an event's block
            if block_start is None:
                block_start = pos
            if line.split(b":", 1)[0] == b"data":
                has_data = True
        pos = m.end()
    return out


def sse_event_ends(body: bytes) -> list[int]:
    """Where each Server-Sent Event ends in the body (``sse_events``)."""
    return [end for _, end in sse_events(body)]


def ndjson_lines(body: bytes, ended: bool = False) -> list[tuple[int, int]]:
    """Each NDJSON record as (its first non-blank byte, its LF); blank lines are not records. A
    last record without a LF counts only when the message has ended (``ended``)."""
    out: list[tuple[int, int]] = []
    pos = 0
    while True:
        nl = body.find(b"\n", pos)
        if nl < 0:
            break
        line = body[pos:nl]
        if line.strip():
            out.append((pos + len(line) - len(line.lstrip()), nl))
        pos = nl + 1
    if ended and body[pos:].strip():
        out.append((pos, len(body) - 1))
    return out


def ndjson_line_ends(body: bytes, ended: bool = False) -> list[int]:
    """Where each NDJSON record ends (``ndjson_lines``)."""
    return [end for _, end in ndjson_lines(body, ended)]
