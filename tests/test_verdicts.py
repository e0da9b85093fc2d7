"""Every check against every built-in target, verdicts compared with ``verdicts.py``.

All targets run in one ``Run`` (as the product runs them: servers first, then recordings side
by side), at a 200 ms producer interval with a 6-item countdown (about 35 targets
side by side, each with several streams at once: the margins need the room). The margins behind these
verdicts are ``conformance.analysis.timing.Margins``; the 20 ms cases are in ``test_fast_intervals.py``.
"""
import pytest

from conformance.checks.catalogue import CHECKS
from conformance.engine.run import Options, Run
from conformance.analysis.target import Target
from conformance.targets.registry import BUILTINS
from verdicts import BASELINE, DIFFERENCES, expected

TIME_SCALE, COUNT = 0.2, 6
# Checks whose pass and fail are shown by a test of their own, against fewer targets, because
# they cost seconds per target: the browser; or need what built-in targets lack: the chain (a --reference).
OWN_TESTS = {"browser.progressive-render": "tests/test_browser.py", "delivery.chain": "tests/test_chain.py",
             "browser.progressive-render.webkit": "tests/test_engines.py",
             "browser.progressive-render.firefox": "tests/test_engines.py",
             "delivery.h3": "tests/test_h3.py"}
JUDGED = {cid: c for cid, c in CHECKS.items() if cid not in OWN_TESTS}
LARGE_SIZE = 64 * 1024 * 1024   # delivery.large-body: big enough to show a body held in memory


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    targets = [Target(name, None, "countdown", BUILTINS[name].interval * TIME_SCALE, COUNT,
                      insecure=BUILTINS[name].insecure, builtin=name, large_size=LARGE_SIZE) for name in DIFFERENCES]
    # 3 s idle timeout: several controls leave the connection hanging on purpose, and a held
    # body comes at 1.4 s.
    run = Run(targets, Options(time_scale=TIME_SCALE, timeout=3.0, large_size=LARGE_SIZE, report_dir=tmp_path_factory.mktemp("report")))
    for t in run.targets:
        t.scenarios = list({c.scenario for c in JUDGED.values()})
    try:
        run.ensure_started()
        yield {(t.id, cid): t.run_check(c) for t in run.targets for cid, c in JUDGED.items()}
    finally:
        run.stop()


@pytest.mark.parametrize("target", list(DIFFERENCES))
def test_verdicts(judged, target):
    got = {cid: judged[(target, cid)].verdict for cid in JUDGED}
    wrong = {cid: f"expected {want}, got {got[cid]}: {judged[(target, cid)].observed}"
             for cid, want in expected(target).items() if cid in JUDGED and got[cid] != want}
    assert not wrong, wrong


def test_every_check_can_pass_and_fail():
    for cid, baseline in BASELINE.items():
        if baseline == "info" or cid in OWN_TESTS:
            continue
        outcomes = {expected(target)[cid] for target in DIFFERENCES}
        assert outcomes & {"fail", "warn"}, f"{cid} is never shown failing"
        assert "pass" in outcomes, f"{cid} is never shown passing"
    assert set(BASELINE) == set(CHECKS)
