"""run.Capacity and the shared scenarios side by side: never more connections than the server's
known workers (less the reserve), or than the concurrent streams showed it serves at once, so
none of the suite's own requests waits behind another for a worker (docs/scheduling.md)."""
import threading
from types import SimpleNamespace

from conformance.checks.catalogue import load_all
from conformance.engine.run import RESERVED_WORKERS, Capacity, served_at_once, shared_order
from conformance.scenarios.base import SCENARIOS, Context
from conformance.scenarios.conditions import Concurrent, Stream
from conformance.wire.recording import Recording
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


def _ctx(server=None):
    from conformance.analysis.target import Target
    return Context(Target("t", "http://127.0.0.1:1/10", "countdown", 1.0, 10), "http://127.0.0.1:1/10", 5.0, 50.0,
                   server=server)


def test_the_seed_holds_its_scenarios_within_its_workers():
    """The seed's cheroot has 10 worker threads: the browser (6 connections, with the holder
    page) and two others fit; two browsers' worth never would."""
    seed = BUILTINS["webpy-seed"]
    budget = seed.workers - RESERVED_WORKERS
    ctx = _ctx(server=SimpleNamespace(base_url="http://127.0.0.1:1"))
    shared = [s for s in SCENARIOS.values() if not s.exclusive]
    assert SCENARIOS["browser"].held(ctx) == 6
    assert all(s.held(ctx) <= budget for s in shared)
    assert 2 * SCENARIOS["browser"].held(ctx) > budget


def test_a_url_target_browser_holds_one_connection():
    assert SCENARIOS["browser"].held(_ctx()) == 1


def test_head_is_admitted_last_and_browsers_first():
    names = ["get-http10", "head", "browser", "httpx", "browser-firefox"]
    got = shared_order(names)
    assert got[0] == "browser" and got[1] == "browser-firefox" and got[-1] == "head"


def _stream(i: int, start: float, head: float, first: float, end: float) -> Stream:
    rec = Recording("concurrent", "http://x/", connect_s=0.0, head_t=head, end_t=end, end="complete")
    rec.pieces = [SimpleNamespace(t=first)]
    return Stream(f"stream {i}", "http://x/", "stream", start, rec)


def test_one_sync_worker_serves_one_stream_at_a_time():
    # each stream's head waits for the one before to end (5 s streams)
    streams = [_stream(i, 0.0, 5.0 * i + 0.01, 5.0 * i + 0.02, 5.0 * (i + 1)) for i in range(5)]
    assert served_at_once(Concurrent("concurrent", streams)) == 1


def test_a_pool_of_three_serves_three():
    streams = [_stream(i, 0.0, 0.01, 0.02, 5.0) for i in range(3)] + \
              [_stream(i, 0.0, 5.01, 5.02, 10.0) for i in range(3, 5)]
    assert served_at_once(Concurrent("concurrent", streams)) == 3


def test_heads_at_once_but_bodies_one_after_another_is_not_served_at_once():
    # heads prompt (an accept thread), bodies produced one stream at a time
    streams = [_stream(i, 0.0, 0.01, 5.0 * i + 0.02, 5.0 * (i + 1)) for i in range(5)]
    assert served_at_once(Concurrent("concurrent", streams)) == 1


def test_an_async_server_serves_them_all_and_the_holder_iframes_do_not_count():
    streams = [_stream(i, 0.0, 0.01, 0.02, 5.0) for i in range(5)]
    frame = _stream(9, 0.0, 0.01, 0.02, 5.0)
    frame.kind = "iframe"
    assert served_at_once(Concurrent("concurrent", streams + [frame])) == 5
