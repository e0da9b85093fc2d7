"""Units of a stream as its reader counts them, and when each arrived: time to first unit, the gaps
between units, and how many arrived merged with the one before.

A unit is what a reader of the stream acts on: an SSE event, an NDJSON line. LLM APIs wrap
their tokens in a few well-known shapes, and there a unit is a delta that carries content:

- OpenAI-style SSE (``data: {json}`` with ``choices[].delta``; ``data: [DONE]`` ends it): a chunk
  whose delta has ``content`` (or ``reasoning_content``, ``reasoning``, ``tool_calls``), or a
  completions ``choices[].text``; the role-only first chunk and the ``finish_reason`` chunk are
  not units;
- Anthropic-style typed events: ``content_block_delta`` events are units; ``ping`` events,
  comments and the envelope (``message_start``, ``content_block_start``/``_stop``,
  ``message_delta``, ``message_stop``) are keep-alives and framing, not units;
- Ollama-style NDJSON (objects with a ``done`` field): a line whose ``response`` (or
  ``message.content``, ``thinking``) is not empty; the ``"done": true`` line is not a unit.

Any other SSE event or NDJSON line is a unit. A unit arrives with the read that completes it
(an SSE event at its blank line, an NDJSON line at its newline: ``timing.sse_events`` and
``timing.ndjson_lines``). ``units_merged`` counts units that arrived in the same read as the one
before: a hop that coalesces writes (a proxy's buffer, a compressor's block) shows there, and it
makes every inter-token latency measured by a client wrong, since the units of one read reach
the caller at once.
"""
from __future__ import annotations

import json
import math

from conformance.analysis.units import ndjson_lines, sse_events
from conformance.analysis.timing import _times_of

ANTHROPIC_TYPES = {"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                   "message_delta", "message_stop", "ping"}
OPENAI_DELTA_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls", "function_call")
OLLAMA_KEYS = ("response", "thinking")


def _fields(block: bytes) -> tuple[str, str]:
    """An SSE block's event type and data (its data lines joined with LF)."""
    kind, data = "message", []
    for line in block.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if name == b"event":
            kind = value.decode("utf-8", "replace") or "message"
        elif name == b"data":
            data.append(value.decode("utf-8", "replace"))
    return kind, "\n".join(data)


def _openai_unit(obj: dict) -> bool:
    for choice in obj.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        if any(delta.get(k) for k in OPENAI_DELTA_KEYS) or choice.get("text"):
            return True
    return False


def _anthropic_unit(obj: dict) -> bool:
    if obj.get("type") != "content_block_delta":
        return False
    delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
    return any(delta.get(k) for k in ("text", "partial_json", "thinking")) or not delta


def sse_units(body: bytes) -> tuple[str, list[int]]:
    """(shape, the end offset of each unit) of an event stream: shape ``openai``, ``anthropic``
    or ``sse``."""
    events = []
    for start, end in sse_events(body):
        kind, data = _fields(body[start:end + 1])
        try:
            obj = json.loads(data) if data and data[0] in "{[" else None
        except ValueError:
            obj = None
        events.append((end, kind, data, obj if isinstance(obj, dict) else None))
    if any(o is not None and "choices" in o for _, _, _, o in events) or any(d == "[DONE]" for _, _, d, _ in events):
        return "openai", [end for end, _, _, o in events if o is not None and _openai_unit(o)]
    if any(k in ANTHROPIC_TYPES - {"ping"} or (o is not None and o.get("type") in ANTHROPIC_TYPES - {"ping"})
           for _, k, _, o in events):
        return "anthropic", [end for end, k, _, o in events
                             if (k == "content_block_delta" or (o or {}).get("type") == "content_block_delta")
                             and _anthropic_unit(o or {"type": "content_block_delta"})]
    return "sse", [end for end, _, _, _ in events]


def ndjson_units(body: bytes, ended: bool = False) -> tuple[str, list[int]]:
    """(shape, the end offset of each unit) of an NDJSON stream: shape ``ollama`` or ``ndjson``."""
    lines = []
    for start, end in ndjson_lines(body, ended):
        try:
            obj = json.loads(body[start:end + 1])
        except ValueError:
            obj = None
        lines.append((end, obj if isinstance(obj, dict) else None))
    if any(o is not None and "done" in o for _, o in lines):
        def content(o):
            msg = o.get("message") if isinstance(o.get("message"), dict) else {}
            return any(o.get(k) for k in OLLAMA_KEYS) or bool(msg.get("content")) or bool(msg.get("thinking"))
        return "ollama", [end for end, o in lines if o is not None and content(o)]
    return "ndjson", [end for end, _ in lines]


def percentile(xs: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``xs``; None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


RATE_READS = 3       # distinct arrival times a rate needs
RATE_SPAN_S = 0.05   # s, from the first unit to the last, a rate needs


def unit_metrics(rec, profile: str | None, together_s: float = 0.0) -> dict:
    """The unit metrics of a recording (DESIGN.md, results.json): ``units``, ``unit_shape``,
    ``first_unit_s`` (s after the request), ``gap_p50_s``, ``gap_p90_s``, ``gap_p99_s``,
    ``gap_max_s``, ``units_per_s`` (units after the first over the span from first to last; None
    when they came in fewer than ``RATE_READS`` reads or within ``RATE_SPAN_S``: a held stream's
    units read at once would give the reader's speed, "109628.8/s", not the stream's) and
    ``units_merged`` (units that came with the one before: in the same read, or within
    ``together_s`` of it where the times are a parser's, not reads'); {} for a profile without
    units (countdown, bytes) or a body without any."""
    if profile not in ("sse", "ndjson") or rec is None or not getattr(rec, "pieces", None):
        return {}
    body = rec.body
    if profile == "sse":
        shape, ends = sse_units(body)
    else:
        shape, ends = ndjson_units(body, ended=getattr(rec, "end", None) == "complete")
    times = [t for t in _times_of(rec, ends) if t is not None]
    if not times:
        return {}
    gaps = [b - a for a, b in zip(times, times[1:])]
    merged = sum(1 for a, b in zip(times, times[1:]) if b - a <= together_s)
    span = times[-1] - times[0]
    r = lambda v: None if v is None else round(v, 4)   # noqa: E731
    return {"unit_count": len(times), "unit_shape": shape, "first_unit_s": r(times[0]),
            "gap_p50_s": r(percentile(gaps, 50)), "gap_p90_s": r(percentile(gaps, 90)),
            "gap_p99_s": r(percentile(gaps, 99)), "gap_max_s": r(max(gaps) if gaps else None),
            "units_per_s": r((len(times) - 1) / span) if span >= RATE_SPAN_S and len(set(times)) >= RATE_READS else None,
            "units_merged": merged}


# Chromium's network view of an EventSource stream is its parsed messages (DevTools), each timed
# as the parser handed it on: messages of one network read come microseconds apart (40 held events:
# 5.71855 to 5.7197 s), where streamed ones are a producer's write apart. Within this long they
# count as merged, as units in one read do.
PARSED_TOGETHER_S = 0.001


def metrics_of(rec, target, together_s: float = 0.0) -> dict:
    """The unit metrics of a check's record, whatever its kind: a wire recording (decoded when
    it carries a content coding), a compound scenario's main exchange, a client's or the
    browser's caller view (what the user's code got). ``together_s``: see ``unit_metrics``."""
    from conformance.wire.codings import content_codings, decoded
    from conformance.wire.recording import Recording
    if rec is None or getattr(rec, "error", None) or getattr(rec, "skip", None) or getattr(rec, "skip_reason", None):
        return {}
    if hasattr(rec, "client_run") and getattr(rec, "stream", None) is not None:   # the browser's stream
        try:
            rec = rec.client_run(target)
        except Exception:  # noqa: BLE001 - a report figure must never break a verdict
            return {}
    if hasattr(rec, "plain_wire") and isinstance(getattr(rec, "primary", None), Recording):
        # a client: its caller's view for the times (what the user's code saw), and its own
        # transport's reads for what arrived merged (a caller's iterator hands merged units over
        # one by one, microseconds apart: only the reads show the hop that merged them)
        caller = metrics_of(rec.primary, target)
        try:
            wire = rec.plain_wire()[0]
        except Exception:  # noqa: BLE001
            wire = None
        merged = metrics_of(wire, target, PARSED_TOGETHER_S if getattr(wire, "scenario", "") == "browser-network"
                            else 0.0).get("units_merged") if wire is not None else None
        if caller and merged is not None:
            caller["units_merged"] = merged
        return caller
    if not isinstance(rec, Recording) and hasattr(rec, "primary"):
        rec = rec.primary
    if not isinstance(rec, Recording) or rec.error or rec.method == "HEAD" or not 200 <= (rec.status or 0) < 300:
        return {}
    if content_codings(rec):
        try:
            rec, _ = decoded(rec)
        except Exception:  # noqa: BLE001
            return {}
    from conformance.analysis.target import profile_of
    profile = getattr(target, "profile", None) or profile_of(rec)
    return unit_metrics(rec, profile, together_s)
