"""Live streams at a 20 ms producer interval: the fastest the burst analysis must separate.

Streams must still pass and held bodies still fail, with the machine as busy as the suite makes
it (six servers and their recordings side by side on two cores).
"""
import pytest

from conformance.checks.catalogue import CHECKS
from conformance.engine.run import Options, Run
from conformance.analysis.target import Target

TIME_SCALE, COUNT = 0.02, 20
EXPECTED = {
    "control-stream": ("pass", "pass"),
    "webpy": ("pass", "pass"),
    "webpy-seed": ("pass", "pass"),
    "control-buffered": ("fail", "fail"),
    "control-late-body": ("fail", "fail"),
    "control-two-bursts": ("fail", "fail"),
}


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    targets = [Target(name, None, "countdown", TIME_SCALE, COUNT, builtin=name) for name in EXPECTED]
    run = Run(targets, Options(time_scale=TIME_SCALE, timeout=2.0, report_dir=tmp_path_factory.mktemp("r")))
    for t in run.targets:
        t.scenarios = ["get"]
    try:
        run.ensure_started()
        yield {t.id: tuple(t.run_check(CHECKS[c]) for c in ("delivery.first-byte", "delivery.progressive"))
               for t in run.targets}
    finally:
        run.stop()


@pytest.mark.parametrize("target", list(EXPECTED))
def test_first_byte_and_progressive_at_20_ms(judged, target):
    got = tuple(f.verdict for f in judged[target])
    assert got == EXPECTED[target], [f.observed for f in judged[target]]
