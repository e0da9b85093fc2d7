"""Content lost on the way to a reader: units counted in two recordings of the same run.

Pure functions of recordings (analysis layer). A *unit* is what the profile's reader hands on:
an SSE event that dispatches (HTML Standard §9.2.6: a block with a ``data`` field), an NDJSON
record, a countdown group. The ``bytes`` profile has none: a producer's bytes may differ between
two requests, so no loss is claimed from their count.

``compare(got, wire, target)`` says whether a reader (a client's caller, a browser's script, the
suite's own decoder of a compressed response) got fewer units than the raw recorder's identity GET
of the same run: that is content lost, not a question of timing. It judges only when both
exchanges ended on their own (``complete``, or ``closed`` for a close-delimited body): a stream
the suite stopped watching (``watched``, ``budget``, ``interrupted``) was cut by the suite, and
its count says nothing about loss.
"""
from __future__ import annotations

from dataclasses import dataclass

from conformance.analysis.units import countdown_group_offsets, ndjson_line_ends, sse_event_ends

ENDED = ("complete", "closed")
WORDS = {"sse": "events", "ndjson": "lines", "countdown": "countdown groups", "bytes": "bytes"}


def unit_count(rec, profile: str, count: int | None = None) -> int | None:
    """How many units the recording's kept body holds (bytes: its body length); None when they
    cannot be counted (a countdown of unknown length)."""
    body = rec.body
    if profile == "sse":
        return len(sse_event_ends(body))
    if profile == "ndjson":
        return len(ndjson_line_ends(body, rec.end in ENDED))
    if profile == "countdown":
        if count is None:
            return None
        return sum(off is not None for off in countdown_group_offsets(body, count))
    return rec.body_bytes


def ended_alone(rec) -> bool:
    """The exchange ended on its own: the body's framing ended it, or the server closed it."""
    return rec is not None and not getattr(rec, "error", None) and getattr(rec, "end", None) in ENDED


@dataclass
class Loss:
    """``got`` units of the ``wire``'s reached the reader; ``lost`` = wire − got (> 0); ``what``:
    the unit's word (events, lines, countdown groups, bytes)."""
    got: int
    wire: int
    what: str

    @property
    def lost(self) -> int:
        return self.wire - self.got

    def __str__(self) -> str:
        return f"{self.got} of {self.wire} {self.what}"


def compare(got_rec, wire_rec, profile: str, count: int | None = None) -> tuple[Loss | None, str]:
    """(the loss, or None; why no comparison was made when none could be). ``got_rec``: what the
    reader got (decoded); ``wire_rec``: the raw recorder's identity GET of the same run."""
    if wire_rec is None or getattr(wire_rec, "error", None):
        return None, "no identity GET of the same run to compare with"
    if not 200 <= (getattr(wire_rec, "status", None) or 0) < 300:
        return None, f"the identity GET was answered {wire_rec.status}"
    if not ended_alone(wire_rec):
        return None, f"the identity GET did not end on its own ({wire_rec.end}): its count is the watch's, not the producer's"
    if getattr(got_rec, "end", None) in ("watched", "budget", "interrupted", "client-closed"):
        return None, f"the reader's exchange was ended by the suite ({got_rec.end})"
    if profile == "bytes":   # a producer's bytes may differ between requests (times, ids): no units to count
        return None, "the bytes profile has no units to count"
    if wire_rec.body_bytes > len(wire_rec.body) or got_rec.body_bytes > len(got_rec.body):
        return None, "bodies larger than the suite keeps are not counted"
    wire, got = unit_count(wire_rec, profile, count), unit_count(got_rec, profile, count)
    if wire is None or got is None:
        return None, f"the {WORDS.get(profile, 'units')} cannot be counted"
    if got < wire:
        return Loss(got, wire, WORDS.get(profile, "units")), ""
    return None, ""
