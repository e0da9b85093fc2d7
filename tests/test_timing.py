"""The burst analysis on synthetic timelines: real streams pass, held bodies fail.

Timelines are built as the recorder would record them (one piece per read) so the delivery
checks run exactly as on the wire, without a server and without the machine's noise.
"""
import random

import pytest

from conformance.checks.catalogue import CHECKS, load_all
from conformance.wire.recording import Piece, Recording
from conformance.analysis.target import Target
from conformance.targets.controls import countdown_schedule

load_all()


def recording(arrivals: list[tuple[float, bytes]], rtt: float = 0.0005) -> Recording:
    """A complete chunked recording whose body pieces arrived at the given times."""
    rec = Recording("get", "http://test/N", connect_s=rtt, head_t=arrivals[0][0] if arrivals else 0.0,
                    status=200, http_version="1.1", framing="chunked", end="complete")
    offset, body = 0, b""
    for t, data in arrivals:
        rec.pieces.append(Piece(t, offset, len(data), True, True))
        offset += len(data)
        body += data
    rec.body_bytes, rec.body_kept = offset, body.decode("latin-1")
    rec.end_t = arrivals[-1][0] if arrivals else 0.0
    return rec


def countdown(count, interval, *, jitter=0.0, seed=0, hold=None, rtt=0.0005, coalesce=1):
    """The countdown as received. ``hold(t)`` maps a write time to its release time (buffering);
    ``jitter`` delays each arrival by up to that fraction of the interval; ``coalesce`` merges
    that many successive write groups into one arrival (Nagle over a long round trip)."""
    rng = random.Random(seed)
    out = []
    groups = {}
    for at, piece in countdown_schedule(count, interval):
        groups.setdefault(at, []).append(piece)
    times = sorted(groups)
    for i, at in enumerate(times):
        lead = times[min((i // coalesce + 1) * coalesce - 1, len(times) - 1)]
        t = rtt + (hold(lead) if hold else lead) + rng.uniform(0, jitter * interval)
        out.append((t, b"".join(groups[at])))
    out.sort(key=lambda a: a[0])
    return recording(out, rtt)


def verdicts(rec, count, interval, profile="countdown", expect_bursts=None):
    target = Target("t", f"http://test/{count}", profile, interval, count, expect_bursts)
    return {cid: CHECKS[cid].judge(rec, target).verdict
            for cid in ("delivery.first-byte", "delivery.progressive", "delivery.cadence")}


STREAMING = {"delivery.first-byte": "pass", "delivery.progressive": "pass", "delivery.cadence": "pass"}


@pytest.mark.parametrize("interval", [0.02, 0.1, 1.0])
@pytest.mark.parametrize("seed", range(10))
def test_a_stream_with_jitter_passes(interval, seed):
    # up to 40% of an interval late on every arrival, independently
    assert verdicts(countdown(10, interval, jitter=0.4, seed=seed), 10, interval) == STREAMING


@pytest.mark.parametrize("interval", [0.02, 1.0])
def test_a_fully_buffered_body_fails(interval):
    end = 11 * interval
    v = verdicts(countdown(10, interval, hold=lambda t: end), 10, interval)
    assert v["delivery.first-byte"] == "fail" and v["delivery.progressive"] == "fail"


@pytest.mark.parametrize("interval", [0.02, 1.0])
def test_a_body_released_in_two_bursts_fails(interval):
    # 20 items: at 20 ms, up to six groups (100 ms of scheduling noise) may share a burst
    mid, end = 10 * interval, 21 * interval
    v = verdicts(countdown(20, interval, hold=lambda t: mid if t <= mid else end), 20, interval)
    assert v["delivery.progressive"] == "fail"


@pytest.mark.parametrize("interval", [0.02, 1.0])
def test_half_streamed_half_held_fails(interval):
    mid, end = 10 * interval, 21 * interval
    v = verdicts(countdown(20, interval, hold=lambda t: t if t <= mid else end), 20, interval)
    assert v["delivery.first-byte"] == "pass" and v["delivery.progressive"] == "fail"


@pytest.mark.parametrize("interval", [0.02, 1.0])
def test_first_bytes_waiting_for_the_end_fail(interval):
    rec = countdown(10, interval, hold=lambda t: 11 * interval)
    rec.head_t = 0.001   # the head came at once; only the body was held
    assert verdicts(rec, 10, interval)["delivery.first-byte"] == "fail"


def test_a_busy_client_merging_neighbours_still_passes():
    # every other pair of groups read together, as when the client was descheduled
    v = verdicts(countdown(10, 0.02, coalesce=2), 10, 0.02)
    assert v["delivery.progressive"] == "pass"


def test_coalescing_over_a_long_round_trip_is_allowed_only_with_that_round_trip():
    # writes every 20 ms over a 80 ms round trip arrive eight at a time (Nagle + delayed ACK)
    assert verdicts(countdown(20, 0.02, coalesce=8, rtt=0.08), 20, 0.02)["delivery.progressive"] == "pass"
    assert verdicts(countdown(20, 0.02, coalesce=8, rtt=0.0005), 20, 0.02)["delivery.progressive"] == "fail"


def test_round_trip_is_subtracted_from_the_first_byte():
    # 150 ms round trip, interval 20 ms: the first byte at 150 ms + 10 ms is on time
    assert verdicts(countdown(20, 0.02, rtt=0.15), 20, 0.02)["delivery.first-byte"] == "pass"


def test_a_stall_is_a_cadence_warning_not_a_progressive_failure():
    interval = 0.1
    v = verdicts(countdown(10, interval, hold=lambda t: t + (0.6 if t >= 0.5 else 0)), 10, interval)
    assert v == {**STREAMING, "delivery.cadence": "warn"}


def test_bytes_profile_counts_bursts():
    arrivals = [(0.01 + k * 0.1, b"x" * 100) for k in range(5)]
    assert verdicts(recording(arrivals), None, 0.1, "bytes", expect_bursts=5)["delivery.progressive"] == "pass"
    lumped = [(0.41, b"x" * 500)]
    assert verdicts(recording(lumped), None, 0.1, "bytes", expect_bursts=5)["delivery.progressive"] == "fail"


def test_a_countdown_without_its_markers_is_judged_as_bytes():
    arrivals = [(0.01 + k * 0.1, b"<p>%d</p>" % k) for k in range(5)]
    target = Target("t", "http://test/5", "countdown", 0.1, 5)
    finding = CHECKS["delivery.progressive"].judge(recording(arrivals), target)
    assert finding.verdict == "pass" and "judged as bytes" in finding.observed
