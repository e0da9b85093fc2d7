"""run.Capacity: shared scenarios side by side never hold more connections than the server's known
workers (less the reserve), so none of the suite's own requests waits behind another for a worker."""
import threading

from conformance.checks.catalogue import load_all
from conformance.engine.run import RESERVED_WORKERS, Capacity
from conformance.scenarios.base import SCENARIOS
from conformance.targets.registry import BUILTINS

load_all()


def test_a_scenario_that_does_not_fit_waits_for_one_that_ends():
    cap = Capacity(8)
    admitted = threading.Event()

    def second():
        with cap.hold(6):
            admitted.set()

    with cap.hold(6):
        t = threading.Thread(target=second)
        t.start()
        t.join(0.3)   # it must still be waiting: 6 + 6 > 8
        assert t.is_alive() and not admitted.is_set() and cap.free == 2
        with cap.hold(2):   # what fits goes beside it
            assert cap.free == 0
    t.join(5)
    assert admitted.is_set() and cap.free == 8


def test_more_than_all_waits_for_all():
    cap = Capacity(3)
    with cap.hold(10):
        assert cap.free == 0
    assert cap.free == 3


def test_the_seed_holds_its_scenarios_within_its_workers():
    """The seed's cheroot has 10 worker threads: the browser (6 connections) and any one other
    shared scenario fit; two browsers' worth never would."""
    seed = BUILTINS["webpy-seed"]
    budget = seed.workers - RESERVED_WORKERS
    shared = [s for s in SCENARIOS.values() if not s.exclusive]
    assert SCENARIOS["browser"].connections == 6
    assert all(s.connections <= budget for s in shared)
    widest = sorted((s.connections for s in shared), reverse=True)[:seed.parallel_scenarios]
    assert sum(widest) > budget   # so the capacity, not the pool's width, is what bounds them
