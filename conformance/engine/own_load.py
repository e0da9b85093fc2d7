"""The suite's own load: how late its own process got to run while a scenario was recorded.

The clients a run drives in its own process (httpx, requests, the engines' WebDriver clients,
Chromium's driver) and its raw recorder are threads of one Python process. With many targets
side by side on a small machine that process can fall behind what it records: on this 2-core
machine, a run of ten URL targets had requests' and httpx's callers get SSE events a median 0.5
s and at most 3 s after the raw recorder (``client.*`` warn "the caller got N events late") with
nothing late on the wire. Such a finding is about the suite, not the client or the target.

So a run keeps a timer thread (``OwnLoad``): it asks to sleep ``TICK_S`` and notes how much later
than that it woke up, which is how late any thread of the suite got the CPU (and Python's GIL)
then. A finding whose recording overlapped a wake-up later than ``NOTE_S`` says so, with the
worst lag and the advice that would decide it (fewer targets at once, or the check alone): the
verdict itself is not changed, as a lag of the suite does not say the target was right.
"""
from __future__ import annotations

import collections
import threading
import time

TICK_S = 0.02          # s the timer asks to sleep
NOTE_S = 0.25          # s: a wake-up this much late is noted (the schedule-free rule's cut-open gap:
                       # a pause this long in a reader reads as a hold)
KEEP = 20_000          # late wake-ups kept (a run's whole length at any plausible load)


class OwnLoad:
    """A daemon thread noting its late wake-ups: ``lags`` is a deque of (monotonic s when it woke,
    s late), for wake-ups later than ``NOTE_S``, at most ``KEEP``."""

    def __init__(self):
        self.lags: collections.deque[tuple[float, float]] = collections.deque(maxlen=KEEP)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="own-load", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _tick(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()
            self._stop.wait(TICK_S)
            woke = time.monotonic()
            late = woke - asked - TICK_S
            if late >= NOTE_S:
                self.lags.append((woke, late))

    def worst(self, start: float, end: float) -> tuple[float, int]:
        """(the worst lag in s, how many were noted) among the late wake-ups whose lateness
        overlapped [start, end] (monotonic s): one that woke just after the span was late in it."""
        noted = [late for woke, late in list(self.lags) if start < woke and woke - late <= end]
        return (max(noted), len(noted)) if noted else (0.0, 0)

    def note(self, start: float, end: float, silence: float | None = None) -> tuple[str, dict]:
        """What a finding of a recording made in [start, end] adds: (text, metrics); ("", {}) when
        the suite kept up, or when the recording's longest silence (s: from the request to the
        first read, or between two reads; None: not known) is more than twice the worst lag: a
        lag cannot have made that silence (a 5.4 s hold beside a 0.4 s lag, seen)."""
        worst, count = self.worst(start, end)
        if not count or (silence is not None and silence > 2 * worst):
            return "", {}
        return (f"; the suite's own process was busy during this recording: a timer of its own woke up to "
                f"{round(worst * 1000)} ms late ({count} time{'s' * (count != 1)} over {round(NOTE_S * 1000)} ms), "
                "so what came late here may be the suite's load, not the target's: fewer targets in one run, "
                "or this check alone (--check), would decide"), {"suite_lag_s": round(worst, 3)}


def longest_silence(rec) -> float | None:
    """The longest time (s) a recording waited for data: from its request to its first read, or
    between two reads; None for a record without reads (a browser page, a skip). A client's run
    is read through its own exchange (``primary``)."""
    reads = getattr(getattr(rec, "primary", rec), "reads", None)
    if not reads:
        return None
    times = [0.0] + [r.t for r in reads]
    return max(b - a for a, b in zip(times, times[1:]))
