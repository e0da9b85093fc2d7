"""A pytest plugin for the benchmark's default run: how long each scenario took, and how long
the streams it watched lasted.

Loaded with ``-p bench.trace`` and ``BENCH_TRACE=<file>``; it changes nothing the run does. Every
scenario's run function is wrapped: when it returns, one JSON line is appended to the file with
the target, the scenario, its start and end (monotonic seconds), and ``watch``: the time the
streams it had to watch took, read off what it recorded:

- one exchange (``get``, ``get-http10``, ``httpx``, ``h2``): request to the end of the body;
  ``head`` adds the time it listens after the head for bytes that must not come (unless the
  server closed before);
- several on one connection (``get-gzip``): the sum of the exchanges;
- several at once (``concurrent``): from the first request to the last stream's end;
- ``browser``: the countdown page's schedule and, when it loaded, the holder page's (the two are
  loaded side by side: the longer of the two), in producer intervals; a stream read by the page's
  script (SSE, NDJSON, bytes): the script's own reading, call to end;
- ``large``: request to the last byte; ``disconnect``: to the close, plus the time the
  server's log is watched after it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import time

import pytest

_lock = threading.Lock()


def watched(scenario: str, result, ctx) -> float:
    """Seconds of streaming that ``result`` had to watch (0 for what did not run)."""
    if result is None or getattr(result, "skip", None) or getattr(result, "skip_reason", None):
        return 0.0
    if scenario == "browser":
        from conformance.scenarios import browser
        interval = ctx.target.interval
        count = ctx.target.countdown_length or 0
        if getattr(result, "stream", None) is not None:
            return _stream_span(result.stream)
        if interval is None:
            return 0.0
        total = (count + 1) * interval if result.countdown is not None else 0.0
        if result.holder is not None:
            total = max(total, browser.HOLDER_SPAN_INTERVALS * interval)
        return total
    if scenario == "large":
        return result.duration_s or (result.primary.end_t or 0.0)
    if scenario == "disconnect":
        closed = result.closed_at or (result.primary.end_t or 0.0)
        return closed + (result.watched_s or 0.0)
    if scenario == "concurrent":
        starts, ends = [], []
        for s in result.streams:
            if s.rec is not None and s.rec.end_t is not None:
                starts.append(s.started)
                ends.append(s.at(s.rec.end_t))
        if result.holder is not None and result.holder_started is not None and result.holder.end_t is not None:
            ends.append(result.holder_started + result.holder.end_t)
        return max(ends) - min(starts) if starts and ends else 0.0
    exchanges = getattr(result, "exchanges", None) or [result]
    total = 0.0
    for rec in exchanges:
        if getattr(rec, "end_t", None) is not None:
            total += rec.end_t
            if getattr(rec, "method", "") == "HEAD" and rec.end == "complete":
                from conformance.scenarios.base import head_listen_s
                total += head_listen_s(ctx.target) if scenario == "head" else 0.0
    return total


def _stream_span(stream) -> float:
    """A browser's stream record: from the request to the stream's end as the script saw it (s)."""
    end = getattr(stream, "end_s", None)
    return float(end) if isinstance(end, (int, float)) else 0.0


def _wrap(name: str, fn, path: str):
    def run(ctx):
        start = time.monotonic()
        result = None
        try:
            result = fn(ctx)
            return result
        finally:
            end = time.monotonic()
            try:
                watch = watched(name, result, ctx)
                if name == "head":   # the listening after the head ends early when the server closes
                    watch = min(watch, end - start)
            except Exception as e:  # noqa: BLE001 - the trace must not change the run
                watch, why = 0.0, f"{type(e).__name__}: {e}"
            else:
                why = None
            line = {"target": ctx.target.id, "scenario": name, "start": start, "end": end,
                    "watch": round(watch, 3), **({"trace_error": why} if why else {})}
            with _lock, open(path, "a") as f:
                f.write(json.dumps(line) + "\n")
    return run


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    path = os.environ.get("BENCH_TRACE")
    if not path:
        return
    from conformance.checks import catalogue
    from conformance.scenarios import base as scenarios
    catalogue.load_all()
    with open(path, "a") as f:
        f.write(json.dumps({"configured": time.monotonic()}) + "\n")
    for name, sc in list(scenarios.SCENARIOS.items()):
        # replace(): the scenario's other fields (exclusive, connections) are how it is scheduled
        scenarios.SCENARIOS[name] = dataclasses.replace(sc, run=_wrap(name, sc.run, path))
