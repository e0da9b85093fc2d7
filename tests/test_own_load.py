"""The suite's own load (``conformance.engine.own_load``): a finding of a recording made while
the suite's own process was late to run says so, with the worst lag; one made while it kept up
does not (whether a calm span stays calm is shown on made-up lags: the machine the tests run on
may itself be busy). The lag is made for real: with Python's thread switch interval raised to 1 s, a busy
loop in the test's thread keeps the timer thread from the interpreter for that long."""
from __future__ import annotations

import sys
import time
from types import SimpleNamespace

from conformance.checks.catalogue import Finding
from conformance.engine import own_load
from conformance.engine.run import TargetRun


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_span_while_the_process_could_not_run_is_noted():
    load = own_load.OwnLoad()
    load.start()
    try:
        old = sys.getswitchinterval()
        sys.setswitchinterval(1.0)
        try:
            busy_start = time.monotonic()
            busy(0.8)                  # holds the interpreter: the timer cannot wake up
            busy_end = time.monotonic()
        finally:
            sys.setswitchinterval(old)
        deadline = time.monotonic() + 30
        while not load.lags and time.monotonic() < deadline:   # the timer wakes up, late, and notes it
            load._stop.wait(0.01)
    finally:
        load.stop()
    worst, count = load.worst(busy_start, busy_end)
    assert worst >= own_load.NOTE_S and count >= 1, list(load.lags)
    text, metrics = load.note(busy_start, busy_end)
    assert "the suite's own process was busy" in text and metrics["suite_lag_s"] >= own_load.NOTE_S


def test_the_overlap_rule():
    load = own_load.OwnLoad()
    load.lags.extend([(10.0, 0.5), (20.0, 1.2)])     # late during 9.5-10.0 and 18.8-20.0
    assert load.worst(9.0, 9.6) == (0.5, 1)           # the lag began inside the span
    assert load.worst(9.0, 9.4) == (0.0, 0)           # it began after the span ended
    assert load.worst(10.0, 30.0) == (1.2, 1)         # it ended at the span's start: not in it
    assert load.worst(0.0, 30.0) == (1.2, 2)


def _trun(lags, span):
    load = own_load.OwnLoad()
    load.lags.extend(lags)
    rec = object()
    return SimpleNamespace(_spans={id(rec): span}, run=SimpleNamespace(own_load=load)), rec


def test_a_timed_warn_or_fail_gets_the_note_and_keeps_its_verdict():
    trun, rec = _trun([(5.0, 2.0)], (1.0, 6.0))
    timed = SimpleNamespace(timed=True)
    for verdict in ("warn", "fail"):
        got = TargetRun._own_load(trun, timed, Finding(verdict, "the caller got 40 events late"), rec)
        assert got.verdict == verdict and got.metrics == {"suite_lag_s": 2.0}
        assert got.observed.startswith("the caller got 40 events late; the suite's own process was busy")
    # a pass, a check that does not judge timing, and a recording made while the suite kept up
    assert TargetRun._own_load(trun, timed, Finding("pass", "ok"), rec).observed == "ok"
    assert TargetRun._own_load(trun, SimpleNamespace(timed=False), Finding("fail", "x"), rec).observed == "x"
    calm, rec2 = _trun([(5.0, 2.0)], (7.0, 9.0))
    assert TargetRun._own_load(calm, timed, Finding("fail", "x"), rec2).observed == "x"


def test_a_silence_a_lag_cannot_have_made_gets_no_note():
    """A 5.4 s hold beside a 0.41 s lag of the suite (a newcomer's run of four URL targets): the
    lag is not what held it. A silence up to twice the lag is noted."""
    load = own_load.OwnLoad()
    load.lags.append((3.0, 0.41))
    assert load.note(0.0, 10.0, silence=5.43) == ("", {})
    assert load.note(0.0, 10.0, silence=0.8)[1] == {"suite_lag_s": 0.41}
    assert load.note(0.0, 10.0)[1] == {"suite_lag_s": 0.41}   # silence not known: noted

    class Rec:
        reads = [SimpleNamespace(t=0.1), SimpleNamespace(t=5.53), SimpleNamespace(t=5.6)]
    assert abs(own_load.longest_silence(Rec()) - 5.43) < 1e-9
    assert own_load.longest_silence(SimpleNamespace(primary=Rec())) == own_load.longest_silence(Rec())
    assert own_load.longest_silence(SimpleNamespace()) is None
