"""One run of the suite, independent of pytest: targets, their recordings, and the results.

Recordings against one target are made one at a time (a single worker per target), so the
suite's own parallelism never changes what a server sees; the exception is a built-in server
known to serve several connections at once (``Builtin.parallel_scenarios``), whose shared
scenarios run side by side while exclusive ones still run alone, and only while the connections
they hold (``Scenario.connections``) fit its known worker threads (``Capacity``): the suite's
scenarios never wait for the server's workers behind one another; only ``delivery.concurrent``,
whose point it is, competes for them. Different targets are recorded
side by side, so a run takes about as long as its slowest target. Built-in targets are started from
the calling (main) thread: the kernel's parent-death signal follows the thread that forked.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from conformance import SUITE_NAME, __version__
from conformance.analysis.inferred import pace
from conformance.analysis.target import Target
from conformance.checks.catalogue import Check, Finding, no_answer
from conformance.engine import apps, gate, settle
from conformance.engine.own_load import OwnLoad, longest_silence
from conformance.engine.diagnosis import diagnose, evidence_of
from conformance.scenarios.base import SCENARIOS, Context, order
from conformance.wire import recorder, redirects
from conformance.wire.recording import Recording
from conformance.targets import launcher
from conformance.targets.registry import BUILTINS

# Exit codes (docs/guide.md, "Exit codes"). 0, 1, 2, 4 and 5 keep pytest's meanings.
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SUITE_FAILED, EXIT_USAGE, EXIT_NO_CHECKS, EXIT_UNREACHABLE = 0, 1, 2, 3, 4, 5, 6
PROGRESS_EVERY = 10.0   # seconds between progress lines while a check waits on a recording
MAIN = "get"            # the recording most checks read: made first, alone
SIDE_UNITS = 5          # after an endless main GET, later scenarios watch this many units' worth
SIDE_WATCH_MIN = 2.5    # s, and at least this long
SHARED_HEAD_S = 2.0     # s: concurrent streams answered this fast show a server that serves several at once
# Workers of a server left free by the suite's shared scenarios: one for the quiet-server probe
# (settle.py), one for a producer the server keeps running after the suite left (the seed's
# HEAD runs its whole generator).
RESERVED_WORKERS = 2
TRIAL_LAG_S = 1.0   # s after the main GET's head time: scenarios on trial start this much after the proven ones (a browser's request leaves after its page is made)


class Capacity:
    """The worker threads a server has for the suite's side-by-side scenarios: ``hold(n)`` waits
    until n more connections fit (a scenario needing more than all of them waits for all).

    ``trial``: nothing has shown a limit yet (every concurrent stream was served at once), so
    the shared scenarios may all be recorded at once, each kept only if it was answered as
    promptly as the main GET (``answered_promptly``, ``TargetRun._run_on_trial``)."""

    def __init__(self, workers: int, why: str = "", trial: bool = False):
        self.total = max(1, workers)
        self.free = self.total
        self.trial = trial
        self.why = why     # where the figure comes from (said in the docs and the plan)
        self._cond = threading.Condition()

    def fits(self, n: int) -> bool:
        return self.free >= min(max(1, n), self.total)

    def take(self, n: int) -> int:
        """Take n connections now (the caller checked ``fits`` under ``cond``); returns what to give back."""
        n = min(max(1, n), self.total)
        self.free -= n
        return n

    def give(self, n: int) -> None:
        with self._cond:
            self.free += n
            self._cond.notify_all()

    @property
    def cond(self) -> threading.Condition:
        return self._cond

    @contextlib.contextmanager
    def hold(self, n: int):
        with self._cond:
            self._cond.wait_for(lambda: self.fits(n))
            n = self.take(n)
        try:
            yield
        finally:
            self.give(n)


def _identity(headers) -> bool:
    """Whether response headers (pairs) say the body is not content-coded (RFC 9110 §8.4)."""
    codings = [v for k, v in headers or [] if str(k).lower() == "content-encoding"]
    return all(c.strip().lower() in ("", "identity") for c in codings)


def first_answer(result) -> tuple[float | None, float | None] | None:
    """When a scenario's request was answered: (its head, its first body byte), in s after the
    request, or None when the record cannot say. The first body byte is given only for a body
    known not to be content-coded: a compressing layer that holds the body (what
    ``delivery.compressed`` judges) makes it late by itself, and must not pass for a request that
    waited for a worker. A page's document: its navigation timing (requestStart to
    responseStart). A page's script reading a stream in Chromium: the head as DevTools saw it
    (and the first event); in WebKit or Firefox (WebDriver shows no headers, and an
    ``EventSource``'s open event may wait for the first event): cannot say. Any other: its main
    exchange (``primary``)."""
    stream = getattr(result, "stream", None)
    if stream is not None:
        if not stream.response_headers or stream.head_s is None:
            return None
        first = stream.events[0][0] if stream.events and _identity(stream.response_headers) else None
        return stream.head_s, first
    page = getattr(result, "countdown", None)
    if page is not None:
        nav = page.navigation or {}
        if nav.get("response_start") is None:
            return None
        return nav["response_start"] - nav.get("request_start", 0.0), None
    rec = getattr(result, "primary", result)
    if getattr(rec, "error", None) or getattr(rec, "head_t", None) is None:
        return None
    pieces = getattr(rec, "pieces", None)
    first = pieces[0].t if pieces is not None and len(pieces) and _identity(getattr(rec, "headers", None)) else None
    return rec.head_t, first


def _s(t: float | None) -> str:
    return "none" if t is None else f"{t:.2f} s"


def answered_promptly(result, get) -> bool | None:
    """Whether a scenario recorded beside others beyond the connections the server was shown
    to serve at once (``Capacity.trial``) was answered as a server with a free worker answers:
    its head within ``SHARED_HEAD_S`` of the main GET's head time and, for a body that is not
    content-coded, its first body byte within ``SHARED_HEAD_S`` of the GET's (each in s after its
    own request). A request that waited for a worker (a full pool: PHP-FPM's default is 5
    children) comes late by about a whole stream. None: the record cannot say
    (``first_answer``). A skip sent nothing: True."""
    if getattr(result, "skip", None) or getattr(result, "skip_reason", None):
        return True
    answer = first_answer(result)
    if answer is None:
        return None
    head, first = answer
    get_head = getattr(get, "head_t", None) or 0.0
    get_pieces = getattr(get, "pieces", None)
    get_first = get_pieces[0].t if get_pieces is not None and len(get_pieces) else None
    if head is not None and head > get_head + SHARED_HEAD_S:
        return False
    return not (first is not None and get_first is not None and first > get_first + SHARED_HEAD_S)


def served_at_once(result, get=None) -> int:
    """How many of the concurrent scenario's own streams (``conditions.Concurrent``, not the
    holder's iframes) the target served at the same time: streams whose head came promptly
    (within ``SHARED_HEAD_S`` of the main GET's own head time) and whose head and first body
    byte both came before the first of them ended. A server with one sync worker answers the
    second stream only after the first ended: 1. A pool of N workers: N. An async server: all."""
    streams = [s for s in getattr(result, "streams", None) or [] if getattr(s, "kind", "") == "stream"
               and s.rec is not None and not s.rec.error and s.rec.head_t is not None]
    ends = [s.at(s.rec.end_t) for s in streams if s.rec.end_t is not None]
    if not ends:
        return 0
    first_end = min(ends)
    prompt = SHARED_HEAD_S + (getattr(get, "head_t", None) or 0.0)
    n = 0
    for s in streams:
        first_byte = s.rec.pieces[0].t if len(s.rec.pieces) else None
        if s.rec.head_t <= prompt and s.at(s.rec.head_t) <= first_end and (
                first_byte is None or s.at(first_byte) <= first_end):
            n += 1
    return n


# The order shared scenarios are admitted in, side by side: the browsers first (they take longest:
# an engine's page on top of the stream), HEAD last (a server may go on running the GET's producer
# after answering it, as the seed does, so nothing is admitted after it to wait for that worker).
SHARED_FIRST = ("browser", "browser-webkit", "browser-firefox")
# Every target's shared scenarios together hold at most this many connections at once: with many
# targets side by side the suite's own machine must keep up (30 controls at a 200 ms interval, each
# with its scenarios side by side, made delivery.http10 late on most of them; a scenario held back
# here waits before its request, so its own times are not touched). Ten URL targets (90 shared
# scenarios) on this 2-core machine, once the suite's own stalls were removed (own_load.py): 48
# took 31.6-31.7 s, 64 took 28.3-29.8 s (a node-fetch warn of the machine's load in 1 run of 6), 90
# 31.7-32.9 s with warns of the suite's load in both runs.
RUN_SHARED_CONNECTIONS = 64
SHARED_LAST = ("head",)


def shared_order(names: list[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(SHARED_FIRST)}
    return sorted(names, key=lambda n: (0 if n in rank else 2 if n in SHARED_LAST else 1, rank.get(n, 0), order(n)))


_prestarted: set[str] = set()
_prestart_lock = threading.Lock()


def _prestart_browsers(scenarios: list[str], insecure: bool, sessions: dict[str, int] | None = None) -> None:
    """Start the browsers the run's scenarios need (Chromium, WebKit, Firefox) once the main
    GET has been recorded, each on a thread of its own, once per process: their start (seconds
    each) then overlaps the exclusive scenarios instead of adding to the shared ones, and never
    disturbs the main GET's timing. An engine opens a window for each of the run's targets that
    records it (``sessions``: scenario -> targets; at most ``engines.AT_ONCE``). Nothing is
    waited for; a browser that cannot start is said by its own scenario."""
    with _prestart_lock:
        todo = [n for n in SHARED_FIRST if n in scenarios and n not in _prestarted]
        _prestarted.update(todo)
    if not todo or recorder.ABORTED.is_set():
        return

    def chromium():
        from conformance.scenarios import browser

        async def warm(b):
            return b.version
        if browser.unavailable() is None:
            with contextlib.suppress(Exception):
                browser.BROWSER.run(warm, 90)

    def engine(name):
        from conformance.scenarios import engines
        with contextlib.suppress(Exception):
            engines.prestart([name], insecure, windows=(sessions or {}).get(f"browser-{name}"))

    for n in todo:
        job = chromium if n == "browser" else (lambda n=n: engine(n.split("-", 1)[1]))
        threading.Thread(target=job, name=f"prestart-{n}", daemon=True).start()


# An interrupted run (Ctrl-C, SIGTERM): how long the recordings in flight get, once their sockets
# are shut down, to hand back what they have (they take milliseconds; a client whose socket the
# suite cannot reach is left behind, and its checks are listed as not run).
INTERRUPT_WAIT = 1.0
# An interrupted run's servers get SIGTERM with the first signal and this long more once the
# results are kept, then SIGKILL (webpy_app needs up to ~1.7 s to remove its large files).
INTERRUPT_GRACE = 1.0


@dataclass
class Options:
    time_scale: float = 1.0
    timeout: float | None = None      # idle timeout per read; None: from the producer's schedule
    strict: bool = False
    report_dir: Path = Path("reports/latest")
    secret_headers: tuple[str, ...] = ()
    large_size: int | None = None     # bytes of the built-in targets' large body (None: 1 GiB)
    repeat: int = 1                   # record each scenario this many times, judge by majority
    baseline: Path | None = None      # a previous results.json to compare verdicts with
    follow_redirects: bool = False    # resolve a URL target's redirects before recording (redirects.py)


class TargetRun:
    """A target during a run: its server (when built in), its recordings and its findings."""

    def __init__(self, target: Target, run: "Run"):
        self.target, self.run = target, run
        self.server: launcher.Running | None = None
        self.launch_error: str | None = None
        self.skip_reason: str | None = None   # a built-in whose program is not installed
        self.redirects: list[str] = []        # --follow-redirects: the hops from the URL given
        self.scenarios: list[str] = []
        self._browsers: list[str] = []       # the browser scenarios this target records
        self.known_skips: set[str] = set()   # scenarios not recorded: their record is a skip (Scenario.skip)
        self._futures: dict[str, Future] = {}
        self._repeats: dict[str, list[Future]] = {}   # every run of a scenario (--repeat)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rec-{target.id}")
        self._capacity: Capacity | None = None   # the server's workers for side-by-side scenarios
        self._placeholders: list[Future] = []   # shared scenarios' results, filled by _run_shared
        self.retried: dict[str, str] = {}       # shared scenarios recorded twice (on trial, then alone): why
        self._verify_again = False              # the shared scenarios recorded again after a trial are being recorded
        self.live: dict = {}   # see Context.live
        self.begun = False     # launched (or tried) in this process
        # What the suite's last scenarios left the server working on (conformance.engine.settle), and
        # how the wait for a quiet server went before each recording made after it (by id).
        self._left: str | None = None
        self._settles: dict[int, settle.Settle] = {}
        self._spans: dict[int, tuple[float, float]] = {}   # id(record) -> when it was recorded (monotonic s)
        self._settle_lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.target.id

    def read_timeout(self) -> float:
        """Idle timeout per read (s): --timeout, else twice the known schedule plus 5 s (at least
        10 s); a stream without a known schedule may be idle up to its watch window."""
        if self.run.options.timeout:
            return self.run.options.timeout
        if not self.target.schedule_known:
            return max(10.0, self.target.watch_s())
        return max(10.0, 2 * self.target.expected_span() + 5)

    def recording_deadline(self) -> float:
        return 4 * self.read_timeout() + 30

    def guard_timeout(self) -> float:
        """pytest-timeout's last guard for one check test: every recording of this target may run
        to its deadline before the test gets its own, plus time to start a server."""
        return max(1, self.run.options.repeat) * len(SCENARIOS) * self.recording_deadline() + 60

    def launch(self) -> None:
        """Start the target's server, when the suite owns it; resolve a URL's redirects when asked."""
        self.begun = True
        if getattr(self.target, "app", None):   # --app: the user's app under a server (conformance/engine/apps.py)
            return apps.launch(self)
        if not self.target.builtin:
            if self.run.options.follow_redirects:
                self._follow_redirects()
            return
        b = BUILTINS[self.target.builtin]
        self.skip_reason = b.missing()
        if self.skip_reason:
            return
        try:
            self.server = launcher.start(b.name, list(b.argv), self.run.options.time_scale)
        except launcher.LaunchError as e:
            self.launch_error = str(e)
            return
        path = b.url_path(self.target.count, self.run.options.time_scale)
        self.target = replace(self.target, url=f"{b.scheme}://{self.server.host}:{self.server.port}{path}")
        if b.reference and self.server.origin_port:   # a built-in chain: its origin is the --reference
            self.target = replace(self.target, reference=f"http://{self.server.host}:{self.server.origin_port}{path}")

    def _follow_redirects(self) -> None:
        res = redirects.resolve(self.target.url, list(self.target.headers), timeout=self.read_timeout(),
                                insecure=self.target.insecure, secret_headers=self.run.options.secret_headers)
        self.redirects = res.hops
        if res.error:
            self.launch_error = res.error
            return
        if res.headers_dropped:
            self.target = replace(self.target, headers=[])   # credentials stay with the origin the user named
            self.redirects.append("--header values not sent: the redirects lead to another origin")
        self.target = replace(self.target, url=res.url)

    def begin_recording(self) -> None:
        if self.launch_error or self.skip_reason:
            return
        # --repeat N: N rounds, each recording every scenario once. Exclusive scenarios come
        # first, alone and one at a time, while the server is fresh: a server keeps working on
        # requests the suite has finished with (the seed's HEAD runs its whole generator), and
        # those lingering workers must not be what an exclusive scenario measures. Shared
        # scenarios then run (``_run_shared``), side by side where the server is known, or was
        # just seen (the concurrent streams), to serve that many connections at once.
        # The main GET comes first and alone: it decides the profile when none was given, and
        # it is judged on a server nothing else of ours is using (a server that serves one
        # stream at a time, or keeps producing for a client that left, would otherwise answer
        # it late).
        # A scenario whose record is a skip known before anything is recorded (Scenario.skip)
        # is neither recorded nor queued: its checks are judged at once.
        wanted = []
        for n in sorted(self.scenarios, key=order):
            record = SCENARIOS[n].skip(self.context()) if SCENARIOS[n].skip else None
            if record is None:
                wanted.append(n)
                continue
            done: Future = Future()
            done.set_result(record)
            self._futures[n] = done
            self._repeats[n] = [done]
            self.known_skips.add(n)
        self._browsers = [n for n in wanted if n in SHARED_FIRST]
        unsent = self.plan().excluded()   # over the request budget, or not for this method
        for _round in range(max(1, self.run.options.repeat)):
            names = [n for n in wanted if n not in unsent]
            alone = [n for n in names if SCENARIOS[n].exclusive or n == MAIN]
            shared = [n for n in names if n not in alone]
            shared_futures: list[Future] = []
            for n in alone + shared:   # each known as soon as it is submitted (see recorded)
                if n in alone:
                    future = self._pool.submit(self._record, n)
                else:   # filled by _run_shared below
                    future = Future()
                    self._placeholders.append(future)
                    shared_futures.append(future)
                self._futures.setdefault(n, future)
                self._repeats.setdefault(n, []).append(future)
            if shared:
                self._pool.submit(self._run_shared, shared, shared_futures)

    def side_capacity(self) -> Capacity | None:
        """The connections the shared scenarios may hold side by side (None: one at a time).

        A built-in server whose workers are known (``Builtin.parallel_scenarios``, ``workers``):
        its workers less ``RESERVED_WORKERS``. Any other target: what the concurrent scenario
        just showed (``served_at_once``) when it served at least two streams at once, less one
        held in reserve (the quiet-server probe, or a producer the server keeps running after the
        suite left) unless every stream was served and the main stream ended by itself; one
        after another when it served one at a time, or was not recorded. Where every concurrent
        stream was served at once (nothing has shown a limit) and no request budget applies,
        the other shared scenarios may go on trial beyond that (``Capacity.trial``,
        ``answered_promptly``)."""
        builtin = BUILTINS[self.target.builtin] if self.target.builtin else None
        if builtin is not None and builtin.parallel_scenarios > 1 and builtin.workers:
            return Capacity(builtin.workers - RESERVED_WORKERS,
                            f"{builtin.workers} known worker threads less {RESERVED_WORKERS} kept free")
        conc = self.recorded("concurrent") if "concurrent" in self._futures else None
        if conc is None or getattr(conc, "error", None):
            return None
        get = self.recorded(MAIN) if MAIN in self._futures else None
        served = served_at_once(conc, get)
        asked = sum(1 for s in getattr(conc, "streams", []) if s.kind == "stream")
        ended = getattr(get, "end", None) in ("complete", "closed")
        # a trial only where no limit was seen and an extra request costs nothing the user capped
        trial = served >= asked >= 2 and self.plan().budget is None
        reserve = 0 if served >= asked and ended else 1
        if served - reserve < 2 and not trial:
            return None
        on_trial = ", the other scenarios on trial beyond that" if trial else ""
        if getattr(get, "end", None) == "watched":
            why = (f"an endless stream: {served} of {asked} concurrent streams served at once, the shared "
                   f"scenarios in one shorter watch window")
        else:
            why = f"{served} of {asked} concurrent streams served at once"
        return Capacity(max(1, served - reserve), why + (f", less {reserve} kept free" if reserve else "") + on_trial,
                        trial=trial)

    def _run_shared(self, names: list[str], futures: list[Future]) -> None:
        """Record the shared scenarios: side by side within ``side_capacity`` (each admitted, in
        ``shared_order``, as soon as the connections it holds fit), else one after another.
        Where the capacity allows a trial, all of them first at once (``_run_on_trial``), and
        those not answered promptly again within the proven connections."""
        capacity = self.side_capacity()
        self._capacity = capacity
        if capacity is None:
            for n, f in zip(names, futures):
                self._fill(n, f)
            return
        todo = [(n, futures[names.index(n)]) for n in shared_order(names)]
        if capacity.trial:
            todo = self._run_on_trial(todo)
            if todo:   # the server has a limit after all: keep one worker free, as for a limit seen at once
                capacity = Capacity(max(1, capacity.total - 1), capacity.why + "; a limit found on trial, one kept free")
        self._run_within(capacity, todo, verify=bool(todo) and self._capacity.trial)

    def _run_on_trial(self, todo: list[tuple[str, Future]]) -> list[tuple[str, Future]]:
        """Record every shared scenario at once, where nothing has shown the server to have a
        limit (``side_capacity``). Each one is kept only if it was answered promptly
        (``answered_promptly``): at a server whose workers all turn out busy, a request waits,
        and whichever of ours waited (a trial request may also take a worker first) comes late.
        Returns those to record again, once every first attempt has ended (so that none of
        ours is still holding a worker), within the proven connections."""
        get = self.recorded(MAIN) if MAIN in self._futures else None
        again: list[tuple[str, Future]] = []
        lock = threading.Lock()

        def attempt(n: str, f: Future, on_trial: bool) -> None:
            try:
                if not f.set_running_or_notify_cancel():
                    return
                with self.run.shared_slots.hold(SCENARIOS[n].held(self.context())):
                    rec = self._record(n)
                prompt = answered_promptly(rec, get)
                # kept: prompt, or (within the proven connections) nothing says it was not
                if self.run.stopping.is_set() or prompt or (prompt is None and not on_trial):
                    f.set_result(rec)
                    return
                answer = first_answer(rec)
                seen = ("no answer time in its record" if answer is None else
                        f"head {_s(answer[0])}, first body byte {_s(answer[1])} after its request")
                with lock:
                    again.append((n, f))
                    self.retried[n] = (f"recorded again within the connections the server was shown to serve at "
                                       f"once: recorded beside the others, it was not answered as promptly as the "
                                       f"main GET ({seen}; the GET's head {_s(getattr(get, 'head_t', None))}), so it "
                                       f"may have waited for a worker the suite's own requests held")
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the recording
                if not f.done():
                    f.set_exception(e)

        # Those that fit the proven connections go first (shared_order: the browsers, whose
        # records cannot always say when they were answered); the others a moment later, so
        # that at a server with just those workers it is the ones on trial that wait.
        proven, used, ctx = 0, 0, self.context()
        for n, _ in todo:
            if used + SCENARIOS[n].held(ctx) > self._capacity.total:
                break
            used += SCENARIOS[n].held(ctx)
            proven += 1
        threads = [threading.Thread(target=attempt, args=(n, f, i >= proven), daemon=True, name=f"rec-{self.id}-{n}")
                   for i, (n, f) in enumerate(todo)]
        for i, th in enumerate(threads):
            if i == proven and proven:
                self.run.stopping.wait(min(SHARED_HEAD_S, (getattr(get, "head_t", None) or 0.0) + TRIAL_LAG_S))
            th.start()
        for th in threads:
            th.join()
        return [x for x in todo if x in again]

    def _run_within(self, capacity: Capacity, todo: list[tuple[str, Future]], verify: bool = False) -> None:
        """Record ``todo`` side by side within the capacity's proven connections, each admitted
        in order as soon as the connections it holds fit. ``verify``: these are recorded again
        after a trial; one still not answered promptly is judged as recorded while the server
        was busy with the suite's own requests (``settle.busy_finding``: a timed check's
        ``fail`` is a ``warn`` saying so)."""
        if verify:
            self._verify_again = True
        pending = list(todo)
        ctx = self.context()
        threads = []
        while pending:
            with capacity.cond:
                capacity.cond.wait_for(lambda: self.run.stopping.is_set() or any(
                    capacity.fits(SCENARIOS[n].held(ctx)) for n, _ in pending))
                if self.run.stopping.is_set():
                    break
                i = next(i for i, (n, _) in enumerate(pending) if capacity.fits(SCENARIOS[n].held(ctx)))
                n, f = pending.pop(i)
                taken = capacity.take(SCENARIOS[n].held(ctx))
            th = threading.Thread(target=self._fill_then_give, args=(n, f, capacity, taken), daemon=True,
                                  name=f"rec-{self.id}-{n}")
            th.start()
            threads.append(th)
        for n, f in pending:   # interrupted before their turn
            self._fill(n, f)
        for th in threads:
            th.join()

    def _fill_then_give(self, scenario: str, future: Future, capacity: Capacity, taken: int) -> None:
        try:
            with self.run.shared_slots.hold(taken):
                self._fill(scenario, future)
        finally:
            capacity.give(taken)

    def _fill(self, scenario: str, future: Future) -> None:
        if future.done() or (not future.running() and not future.set_running_or_notify_cancel()):
            return
        try:
            future.set_result(self._record(scenario))
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the recording
            future.set_exception(e)

    def plan(self):
        """The request plan of this target (``conformance.budget``): what each scenario its
        checks read will send, and which fit the budget. Made once, before the first request."""
        if getattr(self, "_plan", None) is None:
            from conformance.scenarios.budget import make_plan
            self._plan = make_plan(self.target, sorted(self.scenarios, key=order), self.run.options.repeat,
                                   builtin=self.target.builtin is not None)
        return self._plan

    def context(self) -> Context:
        if self.target.large_size is None and self.run.options.large_size:
            self.target = replace(self.target, large_size=self.run.options.large_size)   # --large-size
        return Context(self.target, self.target.url, self.read_timeout(), self.recording_deadline(),
                       self.run.options.secret_headers, self.server, live=self.live, watch=self.watch(),
                       recorded=self.recorded)

    def watch(self) -> float:
        """The watch window of this target's recordings (s). After a main GET that was still open
        when its window ended (an endless feed), the scenarios after it share a shorter one:
        long enough for the first SIDE_UNITS (5) units the GET saw, at least SIDE_WATCH_MIN (2.5 s), so a run against an
        endless stream ends within a minute."""
        full = self.target.watch_s()
        if self.target.watch is not None:
            return full
        main = self._futures.get(MAIN)
        if main is None or not main.done() or main.cancelled() or main.exception() is not None:
            return full
        rec = main.result()
        if getattr(rec, "end", None) != "watched":
            return full
        d = self.target.delivery(rec)
        times = sorted(t for t in d.group_times if t is not None) or [b.end for b in d.bursts]
        enough = times[min(len(times), SIDE_UNITS) - 1] + 1.0 if times else full
        return min(full, max(SIDE_WATCH_MIN, enough))

    def recorded(self, scenario: str):
        """Another scenario's finished record of this target (its first round), waited for; None
        when it is not recorded in this run or its recording failed. Scenarios run in order, so
        a scenario only waits for one submitted before it."""
        future = self._futures.get(scenario)
        if future is None:
            return None
        futures_wait([future])
        if future.cancelled() or future.exception() is not None:
            return None
        return future.result()

    def _record(self, scenario: str):
        if self.run.stopping.is_set() or recorder.ABORTED.is_set():
            rec = Recording(scenario, self.target.url or "", error="the run was interrupted", end=recorder.INTERRUPTED)
            rec.not_started = True
            return rec
        headless = self._headless(scenario)
        if headless is not None:
            return headless
        quiet = self._settle()
        began = time.monotonic()
        rec = SCENARIOS[scenario].run(self.context())
        self._spans[id(rec)] = (began, time.monotonic())
        if (self.run.stopping.is_set() or recorder.ABORTED.is_set()) and not (
                isinstance(rec, Recording) and rec.end in ("complete", "closed", "watched", "budget")):
            rec.interrupted = True   # ended by the interrupt: kept as it stands (Run.interrupt)
        left = settle.left_behind(scenario, rec)
        if quiet is None and scenario in self.retried and self._verify_again:
            get = self.recorded(MAIN) if MAIN in self._futures else None
            if answered_promptly(rec, get) is False:   # answered, and still late
                quiet = settle.Settle("the suite's trial of side-by-side scenarios (recorded again, and still "
                                      "not answered as promptly as the main GET)", last="not measured")
        with self._settle_lock:
            if quiet is not None:
                self._settles[id(rec)] = quiet
            if left:
                self._left = left
        if scenario == MAIN:
            if self._browsers and getattr(rec, "head_t", None) is not None:
                # the browsers start now, once the main GET is judged-ready: their start (seconds of
                # CPU each) overlaps the exclusive scenarios rather than the GET or the shared ones
                sessions = {n: sum(n in t._browsers for t in self.run.targets) for n in self._browsers}
                _prestart_browsers(self._browsers, self.target.insecure, sessions)
            self.target = self.target.resolved(rec)
            if not self.target.schedule_known and not getattr(rec, "error", None):
                free = self.target.delivery(rec).free
                self.target = replace(self.target, pace_s=pace(free) if free is not None else None)
        return rec

    def _headless(self, scenario: str) -> Recording | None:
        """Fail fast: once the main GET has shown the target cannot produce a response head in
        time (connected, but no head by its deadline or idle timeout), the other scenarios are
        not each made to wait their full deadline: they get the GET's reason."""
        main = self._futures.get(MAIN)
        if scenario == MAIN or main is None or not main.done() or main.cancelled() or main.exception() is not None:
            return None
        get = main.result()
        if getattr(get, "head_t", 0) is None and getattr(get, "end", None) in ("timeout", "deadline", "head-deadline"):
            return Recording(scenario, self.target.url or "", error=get.error)
        if getattr(get, "error", None) and getattr(get, "connect_s", 0) is None:
            # never connected (refused, no such host): every other scenario, browsers included,
            # would only find the same, each after its own start-up
            return Recording(scenario, self.target.url or "", error=get.error)
        status = getattr(get, "status", None)
        if not self.target.safe and isinstance(status, int) and status >= 400:
            # A request that is not safe to repeat (RFC 9110 §9.2.1), refused: sending it again
            # would only cost another refusal. Its checks are said as the main request's.
            from conformance.checks.catalogue import refused
            return Recording(scenario, self.target.url or "",
                             error=f"not sent: the first {self.target.method} was refused: {refused(get)}")
        return None

    def _settle(self) -> settle.Settle | None:
        """Wait for a quiet server when an earlier scenario left it work (conformance.engine.settle);
        scenarios recorded side by side wait once, together."""
        with self._settle_lock:
            left, self._left = self._left, None
            if not left:
                return None
            rtt = None
            main = self._futures.get(MAIN)
            if main is not None and main.done() and not main.cancelled() and main.exception() is None:
                rtt = getattr(main.result(), "connect_s", None)
            return settle.wait_for_quiet(self.context(), left, self.settle_at_most(), rtt)

    def settle_at_most(self) -> float:
        """How long the suite waits for a quiet server (s) before recording anyway."""
        return max(30.0, 2 * self.read_timeout() + self.target.expected_span())

    def recording(self, scenario: str) -> Recording | None:
        if self.launch_error:
            return Recording(scenario, "", error=self.launch_error)
        future = self._futures.get(scenario)
        return self._wait(future, scenario) if future else None

    def recordings(self, scenario: str) -> list:
        """Every recording of the scenario (one per --repeat round)."""
        futures = self._repeats.get(scenario)
        if self.launch_error or not futures:
            return [self.recording(scenario)]
        return [self._wait(f, scenario) for f in futures]

    def _wait(self, future: Future, scenario: str):
        """A recording's result; while it is not ready, ``Run.on_wait`` hears every
        ``PROGRESS_EVERY`` seconds how long it has been (a long stream is not a hang)."""
        waited = 0.0
        while not future.done():
            futures_wait([future], timeout=PROGRESS_EVERY)
            waited += PROGRESS_EVERY
            if not future.done() and self.run.on_wait is not None:
                self.run.on_wait(self, scenario, waited)
        return future.result()

    def progress(self) -> str:
        """What the recordings still running have read so far, for a progress line."""
        totals: dict[str, list[int]] = {}
        for (name, _token), (n, reads) in list(self.live.items()):
            t = totals.setdefault(name, [0, 0, 0])
            t[0], t[1], t[2] = t[0] + 1, t[1] + n, t[2] + reads
        if not totals:
            return "no HTTP/1.1 exchange"
        return "; ".join(f"{name}: {k} exchange{'s' * (k > 1)}, {n:,} bytes in {reads:,} reads"
                         for name, (k, n, reads) in sorted(totals.items()))

    def round_of(self, rec) -> int:
        """Which --repeat round made this recording (0: the first, or the only one)."""
        for i, f in enumerate(self._repeats.get(getattr(rec, "scenario", ""), [])):
            if f.done() and not f.cancelled() and f.exception() is None and f.result() is rec:
                return i
        return 0

    def run_check(self, check: Check) -> Finding:
        """Judge one check and keep its result (the pytest test calls this). Under --repeat,
        each recording is judged and the majority verdict kept (``gate.majority``)."""
        self.run.ensure_started(self)
        if self.skip_reason:
            finding = Finding("skip", f"target {self.id} not started: {self.skip_reason}")
            self.run.add_result(self, check, finding, None)
            return finding
        unsent = self.plan().excluded().get(check.scenario)
        if unsent:   # over the request budget, or a GET-only scenario for another method
            finding = Finding("skip", unsent)
            self.run.add_result(self, check, finding, None)
            return finding
        recs = self.recordings(check.scenario)
        # Another scenario's check is judged beside the GET (when recorded): only a target not
        # reached, or answering GET non-2xx, is "could not be judged" (catalogue.Check.judge).
        gets = self.recordings("get") if check.scenario != "get" and "get" in self._futures else []
        findings = [settle.busy_finding(check.judge(rec, self.target, self.run.options.strict,
                                                    get=gets[i if len(gets) == len(recs) else 0] if gets else None),
                                        check, rec, self._settles.get(id(rec)))
                    for i, rec in enumerate(recs)]
        index, finding = gate.majority(findings)
        rec = recs[index]
        finding = self._own_load(check, finding, rec)
        why = no_answer(gets[0]) if gets and check.scenario in self.known_skips else None
        if why and finding.verdict == "skip":   # not recorded, as any scenario after a GET with no answer
            finding = Finding("error", *why)   # would not have been: the GET's reason, said alike
        self.run.add_result(self, check, finding, rec)
        return finding

    def _own_load(self, check: Check, finding: Finding, rec) -> Finding:
        """A timed check's warn or fail of a recording made while the suite's own process was
        late to run (``own_load``) says so, with the worst lag (metric ``suite_lag_s``); the
        verdict is kept."""
        span = self._spans.get(id(rec))
        if span is None or not check.timed or finding.verdict not in ("warn", "fail") or finding.crash is not None:
            return finding
        text, metrics = self.run.own_load.note(*span, silence=longest_silence(rec))
        return replace(finding, observed=finding.observed + text, metrics={**finding.metrics, **metrics}) if text \
            else finding

    def results_for(self, check: Check) -> dict:
        return next(r for r in reversed(self.run.results) if r["target"] == self.id and r["check"] == check.id)

    def in_flight(self) -> list[Future]:
        """The recordings started and not yet done."""
        return [f for fs in self._repeats.values() for f in fs if f.running()]

    def cancel_pending(self) -> None:
        """Recordings not started yet never will be."""
        for f in self._placeholders:   # shared scenarios _run_shared has not begun
            f.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def judge_interrupted(self, check: Check) -> None:
        """After an interrupt, the result of a check that had none yet: judged on its recording
        as it stands where that can be trusted (see ``interrupted_finding``), else ``skip``."""
        if self.launch_error or self.skip_reason or not self._repeats.get(check.scenario):
            self.run_check(check)   # nothing to wait for: it is what it would have been
            return
        futures = self._repeats[check.scenario]
        unfinished = [f for f in futures if not f.done() or f.cancelled() or f.exception() is not None]
        if unfinished:
            f = unfinished[0]
            why = ("was still running and did not stop in time" if f.running() else
                   "was never started" if f.cancelled() or not f.done() else f"failed: {f.exception()!r}")
            self.run.add_result(self, check, Finding("skip", f"interrupted: its {check.scenario!r} recording {why}"), None)
            return
        recs = [f.result() for f in futures]
        get = self._futures.get("get") if check.scenario != "get" else None
        get = get.result() if get is not None and get.done() and not get.cancelled() and get.exception() is None else None
        findings = [interrupted_finding(check, rec, self.target, self.run.options.strict, get) for rec in recs]
        index, finding = gate.majority(findings)
        rec = recs[index]
        finding = self._own_load(check, finding, rec)
        self.run.add_result(self, check, finding, None if getattr(rec, "not_started", False) else rec)

    def stop(self, grace: float = 3.0) -> None:
        # Not waiting: a recording still running ends by itself once its server is gone.
        self._pool.shutdown(wait=False, cancel_futures=True)
        for f in self._placeholders:   # never started: nothing waits on them forever
            f.cancel()
        if self.server:
            self.server.stop(grace)


class Run:
    def __init__(self, targets: list[Target], options: Options):
        self.options = options
        self.targets = [TargetRun(t, self) for t in targets]
        self.results: list[dict] = []
        self.recordings: dict[tuple[str, str], str] = {}   # (target, scenario) -> file in report dir
        self.started_at: float | None = None
        self.started_wall: datetime | None = None
        self.stopping = threading.Event()
        # every target's shared scenarios together: at most this many connections at once, so the
        # suite's own machine keeps up with what it records (``RUN_SHARED_CONNECTIONS``)
        self.shared_slots = Capacity(RUN_SHARED_CONNECTIONS, "the run's own limit")
        self.own_load = OwnLoad()   # how late the suite's own process got to run (noted in findings)
        self.interrupted: str | None = None   # what interrupted the run (SIGINT, SIGTERM, …)
        self.unwritten: list[str] = []           # report files that could not be written, and why (exit 3)
        self._handlers: dict = {}                # signal handlers before ensure_started()
        # called (target run, scenario, seconds waited) while a check waits on a recording
        self.on_wait = None
        # pytest-xdist: the targets this process records (None: all); see distributed.py
        self.owned: set[str] | None = None
        self._lock = threading.Lock()
        # --baseline: {(target, check): verdict} of a previous run (gate.BaselineError if unusable)
        self.baseline = gate.load_baseline(options.baseline) if options.baseline else None

    def by_id(self, target_id: str) -> TargetRun:
        return next(t for t in self.targets if t.id == target_id)

    @property
    def started(self) -> bool:
        return self.started_at is not None

    def ensure_started(self, trun: TargetRun | None = None) -> None:
        if self.started:
            if trun is not None and not trun.begun:   # another process's target, moved here
                trun.launch()
                trun.begin_recording()
            return
        self.started_at, self.started_wall = time.monotonic(), datetime.now(timezone.utc)
        self.own_load.start()
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so servers are torn down; a
            # second SIGINT or SIGTERM ends the process at once (see _first_signal). Put back
            # by stop() unless the run was interrupted.
            self._handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            signal.signal(signal.SIGTERM, _first_signal)
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:   # not when ignored
                signal.signal(signal.SIGINT, _first_signal)
        # All servers first, then all recordings: starting a Python server costs CPU that would
        # otherwise land in the middle of other targets' timed streams.
        mine = [t for t in self.targets if self.owned is None or t.id in self.owned or t is trun]
        for module in sorted({m for t in mine for n in t.scenarios for m in SCENARIOS[n].modules}):
            with contextlib.suppress(ImportError):   # its scenario says so when it runs
                importlib.import_module(module)
        for t in mine:
            t.launch()
        for t in mine:
            t.begin_recording()

    def stop(self) -> None:
        self.stopping.set()
        self.own_load.stop()
        for t in self.targets:   # every server told at once, then each waited for
            if t.server:
                t.server.terminate()
        for t in self.targets:
            t.stop(INTERRUPT_GRACE if self.interrupted else 3.0)
        handlers, self._handlers = self._handlers, {}
        if handlers and not self.interrupted and not _signals_seen \
                and threading.current_thread() is threading.main_thread():
            for sig, handler in handlers.items():   # a process that goes on (the suite's own tests)
                if handler is not None:
                    signal.signal(sig, handler)

    def mark_interrupted(self, why: str = "") -> None:
        """Say the run was interrupted (by the signal seen, else ``why``): exit code 2."""
        self.interrupted = self.interrupted or _signal_seen() or why or "interrupted"

    def interrupt(self, checks: list[tuple[TargetRun, Check]], why: str = "") -> None:
        """The run was interrupted (Ctrl-C, SIGTERM): stop every recording in progress at once,
        keep each as it stands (``end`` "interrupted"), and give every selected check without a
        result one: judged on what was recorded where that can be trusted, else ``skip`` with
        the reason "interrupted". ``checks``: the (target, check) pairs the run selected."""
        self.mark_interrupted(why)
        _arm_second_signal()
        self.stopping.set()
        for t in self.targets:
            t.cancel_pending()
        _abort_recordings()
        futures_wait([f for t in self.targets for f in t.in_flight()], timeout=INTERRUPT_WAIT)
        judged = {(r["target"], r["check"]) for r in self.results}
        for trun, check in checks:   # (under pytest-xdist, only this worker's targets)
            if (trun.id, check.id) not in judged and trun.begun:
                trun.judge_interrupted(check)

    def left_running(self) -> list[str]:
        """Recordings an interrupt could not stop (their threads would hold the process)."""
        return [t.id for t in self.targets if t.in_flight()]

    def add_result(self, trun: TargetRun, check: Check, finding: Finding, rec: Recording | None) -> None:
        if rec is not None and finding.verdict != "skip":   # SSE/NDJSON units: first unit, gaps, merged
            from conformance.analysis.llm_units import metrics_of
            try:
                units = metrics_of(rec, trun.target)
            except Exception:  # noqa: BLE001 - a figure must never cost a verdict
                units = {}
            if units:
                finding.metrics = {**units, **finding.metrics}
        with self._lock:
            result = {
                "target": trun.id, "check": check.id, "level": check.level, "verdict": finding.verdict,
                "spec": check.spec, "requirement": check.requirement, "title": check.title,
                "expected": finding.expected, "observed": finding.observed, "metrics": finding.metrics,
                "recording": self._save_recording(trun, rec),
            }
            if finding.crash is not None:
                result["crash"] = finding.crash
            self.results.append(result)

    def _save_recording(self, trun: TargetRun, rec) -> str | None:
        if rec is None or (not getattr(rec, "url", None) and rec.error):
            return None
        n = trun.round_of(rec)   # under --repeat, each round's recording is a file of its own
        key = (trun.id, rec.scenario if n == 0 else f"{rec.scenario}-run{n + 1}")
        if key not in self.recordings:
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{key[0]}-{key[1]}")[:120] + ".json"
            path = self.options.report_dir / "recordings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            d = rec.to_dict()
            if getattr(rec, "interrupted", False) or getattr(rec, "end", None) == recorder.INTERRUPTED:
                d["interrupted"] = True   # cut short by the run's interrupt: what arrived until then
            path.write_text(json.dumps(d))
            self.recordings[key] = f"recordings/{name}"
        return self.recordings[key]

    def comparison(self) -> gate.Comparison | None:
        """This run against --baseline, when one was given."""
        if self.baseline is None:
            return None
        return gate.compare(self.baseline, self.results, str(self.options.baseline))

    def exit_code(self) -> int:
        if self.interrupted:   # whatever came before: the run did not finish
            return EXIT_INTERRUPTED
        if self.unwritten or any(r.get("crash") for r in self.results):   # the suite failed: before 1 and 6
            return EXIT_SUITE_FAILED
        verdicts = {r["verdict"] for r in self.results}
        if not self.results or verdicts == {"skip"}:
            return EXIT_NO_CHECKS
        if self.baseline is not None:   # the CI gate: only a regression fails (docs/gate.md)
            return EXIT_OK if self.comparison().passed else EXIT_FAILED
        if "error" in verdicts:
            return EXIT_UNREACHABLE
        return EXIT_FAILED if "fail" in verdicts else EXIT_OK

    def diagnosis(self, trun: TargetRun) -> list:
        """The distinct causes behind the target's findings (``conformance.engine.diagnosis``); the
        findings they explain get a ``cause`` index into the list."""
        recs = {}
        for scenario in (MAIN, "chain"):
            fut = trun._futures.get(scenario)
            if fut and fut.done() and not fut.cancelled() and fut.exception() is None:
                recs[scenario] = fut.result()
        evidence = evidence_of(recs.get(MAIN), trun.target, recs.get("chain"))
        with self._lock:
            mine = [r for r in self.results if r["target"] == trun.id]
            return diagnose(mine, evidence=evidence)

    def results_document(self) -> dict:
        duration = time.monotonic() - self.started_at if self.started_at else 0.0
        targets = []
        for t in self.targets:
            server = None
            for scenario in ("get", "head", "get-http10"):
                fut = t._futures.get(scenario)
                if fut and fut.done() and not fut.cancelled() and fut.exception() is None and fut.result().headers:
                    server = (fut.result().header_values("server") or [None])[0]
                    if server:
                        break
            entry = {"id": t.id, "url": t.target.url, "profile": t.target.profile or "bytes",
                     "interval_s": t.target.interval, "server": server, "watch_s": t.target.watch_s()}
            if not t.target.schedule_known:
                entry["pace_s"] = None if t.target.pace_s is None else round(t.target.pace_s, 4)
            if t.redirects:
                entry["redirects"] = t.redirects
            if t.launch_error:
                entry["error"] = t.launch_error
            if t.skip_reason:
                entry["skipped"] = t.skip_reason
            if getattr(t.target, "app", None):   # --app (conformance/engine/apps.py): what the report's table needs
                entry["app"] = t.target.describe()
            entry["request"] = request_entry(t.target, self.options.secret_headers)
            if t.scenarios:
                entry["plan"] = t.plan().to_dict()
            if t.begun and t.scenarios and not (t.launch_error or t.skip_reason):
                entry["schedule"] = {"side_by_side": t._capacity.why if t._capacity is not None else None,
                                     **({"recorded_again": dict(t.retried)} if t.retried else {})}
            if t.server:
                entry["server_stderr"] = t.server.stderr()[-4000:]
            entry["diagnosis"] = [c.to_dict() for c in self.diagnosis(t)]
            targets.append(entry)
        return {
            "schema": 1,
            "suite": {"name": SUITE_NAME, "version": __version__},
            "started_at": (self.started_wall or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": round(duration, 3),
            "exit_code": self.exit_code(),
            **({"interrupted": self.interrupted} if self.interrupted else {}),
            "targets": targets,
            "results": self.results,
            **({"gate": self.comparison().to_dict()} if self.baseline is not None else {}),
        }

    def write_results(self) -> Path:
        self.options.report_dir.mkdir(parents=True, exist_ok=True)
        path = self.options.report_dir / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results_document(), indent=2))
        tmp.replace(path)
        return path


def request_entry(target: Target, secret_headers=()) -> dict:
    """results.json's ``request`` of a target: its method, the headers it adds (values redacted
    as in recordings), and its body as size, SHA-256 and redacted head (``conformance.request``)."""
    from conformance.wire.recording import redact
    from conformance.wire.request import body_summary
    body = getattr(target, "body", None)
    ctype = next((v for k, v in target.headers if k.lower() == "content-type"), "")
    return {"method": getattr(target, "method", "GET"), "headers": redact(list(target.headers), secret_headers),
            **body_summary(body, ctype)}


def interrupted_finding(check: Check, rec, target: Target, strict: bool = False, get=None) -> Finding:
    """A check's finding on a recording made while the run was being interrupted.

    A recording that ended on its own is judged as always. One the interrupt cut short is judged
    on what arrived, and the finding kept when it is a fact about those bytes: a pass, info or
    skip (what arrived was parsed, arrived progressively, …; except a watch cut short), or a
    failure of a check that reads the head alone. Anything else may be the interrupt's doing
    (a body cut short, a stream too short to judge) and becomes ``skip``, "interrupted: …",
    with what the judge said on what arrived."""
    if getattr(rec, "not_started", False):
        return Finding("skip", f"interrupted: the run was interrupted before its {check.scenario!r} recording was made")
    cut = getattr(rec, "interrupted", False) or getattr(rec, "end", None) == recorder.INTERRUPTED
    if get is not None and getattr(get, "not_started", False):
        get = None
    finding = check.judge(rec, target, strict, get=get)
    if not cut:
        return finding
    when = getattr(rec, "end_t", None)
    what = (f"the {check.scenario!r} recording was cut short by the interrupt"
            + (f" after {when:.2f} s" if isinstance(when, (int, float)) else "")
            + (f" ({rec.body_bytes:,} body bytes)" if isinstance(getattr(rec, "body_bytes", None), int) else ""))
    # a recording that failed (Chromium closed under its session, say) failed by the interrupt
    keep = not (getattr(rec, "error", None) or getattr(rec, "skip_reason", None)) and (
        (finding.verdict in ("pass", "info", "skip") and not check.watches)
        or (finding.verdict in ("fail", "warn") and check.head_only))
    if keep:
        finding.observed = f"{finding.observed} (judged on what arrived: {what})"
        finding.metrics = dict(finding.metrics, interrupted=True)
        return finding
    return Finding("skip", f"interrupted: {what}, so this check could not be judged "
                           f"(on what arrived: {finding.verdict}, {finding.observed})", finding.expected,
                   dict(finding.metrics, interrupted=True))


# --- signals: the first one unwinds the run, a second one ends the process ----------------------
_signals_seen: list[int] = []


def _signal_seen() -> str | None:
    return signal.Signals(_signals_seen[0]).name if _signals_seen else None


def _first_signal(signum, frame):
    """SIGINT or SIGTERM: unwind like Ctrl-C (pytest ends its session, the plugin stops the
    recordings, keeps what they have and stops the servers); a second one ends the process."""
    _signals_seen.append(signum)
    _arm_second_signal()
    _abort_recordings()   # now, while pytest unwinds: Run.interrupt then collects what they kept
    launcher.terminate_all()   # the servers shut down meanwhile too; Run.stop reaps them
    raise KeyboardInterrupt(signal.Signals(signum).name)


def reset_after_interrupt() -> None:
    """Recordings (and Chromium sessions) may start again in this process: for the suite's own
    tests, which interrupt a run in process and go on."""
    recorder.reset_abort()
    _signals_seen.clear()
    browser = sys.modules.get("conformance.scenarios.browser")
    if browser is not None and hasattr(browser, "BROWSER"):
        browser.BROWSER.reset_abort()
    engines = sys.modules.get("conformance.scenarios.engines")
    if engines is not None:
        engines.reset_abort()


def _abort_recordings() -> None:
    recorder.abort_all()
    browser = sys.modules.get("conformance.scenarios.browser")   # only if a browser may be running
    if browser is not None and hasattr(browser, "BROWSER"):
        browser.BROWSER.abort()
    engines = sys.modules.get("conformance.scenarios.engines")   # WebKit and Firefox, if they may be running
    if engines is not None:
        engines.abort_all()


_raise_interrupt = _first_signal   # its former name (conformance.plugin.distributed installs it)


def _arm_second_signal() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _second_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _second_signal)


def _second_signal(signum, frame):
    """A second Ctrl-C (or SIGTERM) while the first is being handled: end now. The servers the
    suite started get SIGKILL to their process groups on the way out."""
    launcher.kill_all()
    try:
        os.write(2, f"\n{signal.Signals(signum).name} again: exiting at once (exit code {EXIT_INTERRUPTED})\n".encode())
    finally:
        os._exit(EXIT_INTERRUPTED)
