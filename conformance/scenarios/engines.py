"""WebKit and Firefox beside Chromium: the same page and the same page script, in the two other
engines users have, driven over WebDriver.

- **WebKit** is Debian's WebKitGTK (the WebCore Safari uses): ``WebKitWebDriver`` (package
  ``webkit2gtk-driver``) driven with Selenium (``selenium.webdriver.WebKitGTK``), which starts
  WebKitGTK's ``MiniBrowser`` in automation mode. WebKitGTK 2.50's MiniBrowser has no headless
  mode, so it draws into an ``Xvfb`` display the suite starts (``-displayfd``: X picks a free
  display number).
- **Firefox** is Debian's ``firefox-esr``, started headless with Marionette (its built-in
  WebDriver, ``--marionette``; ``marionette.port`` 0 and the port read back from the profile's
  ``MarionetteActivePort``), driven with Mozilla's own client, ``marionette_driver``. Debian has
  no geckodriver, and Playwright's WebDriver BiDi driver for stock Firefox asks for commands
  Firefox ESR 153 does not have (``emulation.setMediaFeaturesOverride``).

Each engine is one process per run (``ENGINES``), started on first use (both at once when a run
needs both: ``prestart``), closed when idle for ``IDLE_CLOSE_S`` (``PRESTARTED_IDLE_S`` before its
first session), at exit, and at once when a run is interrupted (``abort_all``, called by
``conformance.run`` with Chromium's abort). Every process of an engine (the driver, the browser
and its helpers, Xvfb) is in a process group of its own, and closing kills the group.

Several targets' sessions run in an engine at the same time, up to ``AT_ONCE``, each in a
top-level window of its own (WebDriver New Window), left on about:blank for the next session.
WebDriver serves one command at a time, so the sessions' commands take turns (``_Window``: a short
lock, and a switch to the session's window when the last command went to another); a session
never holds WebDriver for long (a stream script is started, then its result looked for every
``RESULT_POLL_S``). Two things are timed by how soon WebDriver answers, and have it to
themselves (``Engine.exclusive``): a countdown page from its navigation until its observer is in
(at most ``EXCLUSIVE_MAX_S``), and the opening of a window (0.2-0.6 s on an idle machine, 1-4 s
on a loaded one; beside a page's first moments Firefox answered that page's looks up to 3 s late).
Windows, not tabs: measured here with one page per window, each counting its
``requestAnimationFrame`` callbacks and 10 ms timers over 3 s, every window (3 and 10 at once) got
57-61 frames/s and 94-98 timers/s in WebKitGTK's MiniBrowser on Xvfb and 50-61 frames/s and 72-98
timers/s in headless Firefox, focused or not, ``visibilityState`` "visible"; a background *tab*
got 0-0.3 frames/s and 1 timer/s in both, and would time the countdown's paints by its throttling.
A countdown page whose ``visibilityState`` is ever not "visible" is a skip with that reason.
Measured on this 2-core machine (busy with other work), a run of ten URL targets (SSE streams of
5.7 s each): from the first session asked for to the last one's end, WebKit's ten took 18.7 s
and Firefox's 21.9 s, the engines' starts included, where one at a time they took 60.6 s; the run
took 36.8 s instead of 83.3 s (one such URL: 22.1 s), every verdict the same; 29.3 s with the
windows opened when the engine starts (``Engine.start``) and the run's other changes (bench). The engine
controls' verdicts are unchanged (tests/test_engines.py).

What a session does, per profile (the same scripts Chromium runs: ``conformance.browser``):

- countdown: the target's URL is loaded with the page load strategy ``none``; the suite polls
  the page (``POLL_S``) and installs ``OBSERVER_JS`` (a ``MutationObserver`` and
  ``requestAnimationFrame`` per new group) as soon as the new document is there. WebDriver has no
  script that runs before a page's first byte, so a group already in the DOM when the observer
  is installed is timed at the install (at most ``POLL_S`` plus a WebDriver round trip late);
  later groups are timed by the observer itself. Neither engine has the Element Timing API: a
  group's paint time is its next animation frame.
- sse, ndjson, bytes: a page of the target's own origin is needed for the script to read the
  stream same-origin (as the target's own pages do), and WebDriver cannot make one up as
  Playwright does for Chromium: the engine loads ``BLANK_PATH`` from the target itself (one
  extra GET of a path no target serves; its answer, typically a 404, is stopped at once and only
  its origin is used), then runs ``STREAM_JS``. Its times are the script's ``performance.now()``,
  seconds after the script called ``EventSource``/``fetch()`` (no DevTools here to say when the
  request was sent). That page is the target's: an API's JSON 404 is shown as a document
  (Firefox's JSON viewer is off: the script never ran in it), and a 404 whose
  Content-Security-Policy forbids the script or its request (Express's ``default-src 'none'``)
  makes the check a skip that names the policy, at once (``page_csp``).

What the engines do differently (measured here on the controls; tests/test_engines.py):

- WebKit does not parse a partial HTML document until about 512 bytes of it have come
  (bugs.webkit.org 252413 and 265386): 10 pieces of 40 bytes, 0.5 s apart, enter its DOM all at
  once when the body ends, where Chromium and Firefox show each piece as it comes. 1 KiB of
  padding first (an HTML comment is enough) makes WebKit progressive.
- ``EventSource`` and a ``fetch()`` body reader stream in all three.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from conformance.scenarios.browser import (BLANK_PATH, OBSERVER_JS, STREAM_JS, SSE_MEDIA, BrowserRecording, PageRecord,
                                 StreamRecord, _fill, _first_line, _stream_budget, _stream_watch, sse_types)
from conformance.wire.recording import BODY_KEEP, PIECES_KEEP, Recording
from conformance.scenarios.base import Context, Scenario, register
from conformance.analysis.target import MEDIA_PROFILES
from conformance.analysis.units import countdown_count

POLL_S = 0.01            # between two looks at a loading page, until the observer is in it
LOOK_S = 0.05            # between two looks once it is (the observer times the page itself)
RESULT_POLL_S = 0.1      # between two looks for a stream script's result, per session in progress
RESULT_POLL_MAX_S = 0.5  # ... at most (ten sessions' looks every 0.1 s kept the suite's process busy)
STOP_WAIT_S = 5.0        # for a stopped stream script to hand back what it has
EXCLUSIVE_MAX_S = 3.0    # the longest one session keeps the engine's WebDriver to itself
TURN_FIRST_S = 10.0      # ... and at most this long more until its first command gets WebDriver
IDLE_CLOSE_S = 30.0      # an engine unused this long after a session is closed
# ... and after a start with no session yet (``prestart``): a run of ten targets recorded one
# scenario after another per target comes to the engines 35-45 s after the start (measured), and
# a restart then took 5-15 s on this loaded machine
PRESTARTED_IDLE_S = 300.0
# sessions at once in one engine (a window each); more wait for a window to be free. Ten at once
# on this 2-core machine (already loaded by other work), with every scenario of ten targets side
# by side, made each Firefox window take 2-4 s to open and two of its pages get SSE events up to
# 1.7 s after the raw recorder: a warn that was the suite's own load.
AT_ONCE = 5
START_TIMEOUT_S = 60.0
START_ATTEMPTS = 2       # a start that fails is tried once more (seen once on a loaded machine:
                         # WebKitWebDriver exited with status 1 at its start, the next start went)
SETTLE_S = 1.0           # after the load: for the last animation frames
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
WEBKIT_BROWSERS = ("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
                   "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.0/MiniBrowser",
                   "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
FIREFOX_ENV, WEBKIT_ENV = "CONFORMANCE_FIREFOX", "CONFORMANCE_WEBKIT_DRIVER"
# WebKit's documented hold of a partial HTML document (bytes), for the finding and the diagnosis
WEBKIT_PARTIAL_BYTES = 512
WEBKIT_BUGS = "bugs.webkit.org/show_bug.cgi?id=252413, bugs.webkit.org/show_bug.cgi?id=265386"
# Firefox preferences for a machine without internet: nothing phones home, nothing updates
FIREFOX_PREFS = {
    "marionette.port": 0, "remote.prefs.recommended": True, "browser.shell.checkDefaultBrowser": False,
    "app.update.disabledForTesting": True, "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False, "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False, "extensions.update.enabled": False,
    "network.http.http3.enable": False, "browser.cache.disk.enable": False,
    # an application/json answer (an API's 404 to BLANK_PATH) is shown as the page's own document,
    # not in Firefox's JSON viewer, a privileged page where the stream script never ran: measured,
    # the check waited its whole budget (50 s) and said "the page's script returned nothing"
    "devtools.jsonview.enabled": False,
}

# Polls a loading page: installs the observer in the new document (the one at `url` whose
# navigation began after `after`, a page-clock wall time in ms) and says how far it got.
POLL_JS = """
const url = arguments[0], after = arguments[1];
const fresh = performance.timeOrigin >= after && location.href !== "about:blank";
if (fresh && document.documentElement && !window.__conformance) { %s }
return {fresh: fresh, href: location.href, state: document.readyState, installed: !!window.__conformance,
        origin: performance.timeOrigin, now: performance.now(), visibility: document.visibilityState};
""" % OBSERVER_JS.strip().rstrip(";")

COLLECT_JS = """
const r = window.__conformance; if (!r) return null;
const nav = performance.getEntriesByType('navigation')[0];
return JSON.stringify(Object.assign({}, r, {nav: nav ? nav.toJSON() : null,
  text: (document.documentElement ? document.documentElement.textContent : '').slice(0, 300)}));
"""

SETTLED_JS = """
const r = window.__conformance;
return !r || Object.values(r.groups).every(g => g.frame !== null);
"""

# Notes the first Content-Security-Policy violation of the page (its directive and the policy) in
# window.__cf_csp: the page of the target's origin the stream script runs in is the target's own
# answer to BLANK_PATH, and a server's error page may forbid scripts or connections (Express's 404:
# ``default-src 'none'``).
CSP_WATCH_JS = """
window.__cf_csp = null;
document.addEventListener("securitypolicyviolation", e => {
  if (!window.__cf_csp) window.__cf_csp = (e.effectiveDirective || e.violatedDirective) + " (Content-Security-Policy: " +
    String(e.originalPolicy).slice(0, 200) + ")";
});
"""
CSP_JS = "return window.__cf_csp || null;"

# STREAM_JS started in the script's own global (WebKit's WebDriver scripts run in the page's
# global); its result is kept as JSON text in window.__cf_result for RESULT_JS to read. The script
# call returns at once: WebDriver serves one command at a time, and the window's session is one of
# several sharing it.
PAGE_START_JS = """
window.__cf_result = null;
%s
(%s)(arguments[0]).then(r => JSON.stringify(r), e => JSON.stringify({error: String(e), events: []}))
  .then(t => { window.__cf_result = t; });
return true;
""" % (CSP_WATCH_JS.strip(), STREAM_JS.strip())

# The same, where WebDriver's scripts run in a sandbox that sees the page through Xrays (Firefox):
# a fetch() reader's Uint8Array cannot be read there, so a script element runs the function in the
# page itself, and its result comes back to the sandbox's window.__cf_result as a DOM event's
# string detail (strings cross from the page to the sandbox unchanged).
PAGE_ELEMENT_START_JS = """
const [fn, arg] = [arguments[0], arguments[1]];
const id = "cf-result-" + Math.random().toString(36).slice(2);
window.__cf_result = null;
%s
document.addEventListener(id, e => { window.__cf_result = e.detail; }, {once: true});
const root = document.documentElement;
root.removeAttribute("data-cf-ran");
const s = document.createElement("script");
s.textContent = `document.documentElement.setAttribute("data-cf-ran", "1");` +
  `(${fn})(${arg}).then(r => JSON.stringify(r), e => JSON.stringify({error: String(e), events: []}))` +
  `.then(t => document.dispatchEvent(new CustomEvent(${JSON.stringify(id)}, {detail: t})));`;
(document.head || root).appendChild(s);
s.remove();
const ran = root.getAttribute("data-cf-ran") === "1";
root.removeAttribute("data-cf-ran");
return ran;
""" % CSP_WATCH_JS.strip()

RESULT_JS = "return window.__cf_result || null;"
STOP_JS = "if (window.__cf_stop) window.__cf_stop('deadline'); return true;"
# the stop, through a script element in the page's own global (Firefox's sandbox cannot call it)
PAGE_ELEMENT_STOP_JS = """
const s = document.createElement("script");
s.textContent = "if (window.__cf_stop) window.__cf_stop('deadline');";
(document.head || document.documentElement).appendChild(s);
s.remove();
return true;
"""


class EngineStartError(RuntimeError):
    pass


def _kill_group(proc: subprocess.Popen | None, grace: float = 2.0) -> None:
    """End a process we started and everything in its process group."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(wait)
            # the group may outlive its leader (a browser's helpers): one more signal for them
            os.killpg(proc.pid, signal.SIGKILL)
        except (subprocess.TimeoutExpired, ProcessLookupError, PermissionError):
            continue
        break
    try:
        proc.wait(1)
    except subprocess.TimeoutExpired:
        pass


class Driver:
    """What a session needs of a WebDriver client (Selenium's or Marionette's), for the window
    it was given."""

    def navigate(self, url: str) -> None: ...
    def execute(self, script: str, *args): ...
    def screenshot(self) -> bytes | None: ...

    def page_start(self, fn: str, arg) -> bool:
        """Start ``await (fn)(arg)`` as the page's own script and return at once; its result, as
        JSON text, is then read with ``page_result`` (None until it has settled). False: the page
        did not let the script run (its Content-Security-Policy: ``page_csp`` says)."""
        return self.execute(PAGE_START_JS, arg) is not False

    def page_csp(self) -> str | None:
        """The page's first Content-Security-Policy violation since ``page_start`` (directive and
        policy, one line), or None."""
        return self.execute(CSP_JS)

    def page_result(self) -> str | None:
        return self.execute(RESULT_JS)

    def page_stop(self) -> None:
        """Tell the page's stream script to stop now (it then settles with what it has)."""
        self.execute(STOP_JS)

    def exclusive(self):
        """A context in which this session's commands are the only ones WebDriver serves (see
        ``Engine.exclusive``); nothing to share here."""
        return contextlib.nullcontext()

    # the window of the browser's own: what the engine uses to give each session a window
    def handle(self) -> str: ...
    def new_window(self) -> str: ...
    def switch(self, handle: str) -> None: ...


class _Window(Driver):
    """A session's own browser window in the engine's one WebDriver session: each command takes
    the engine's command lock (the client and the driver serve one command at a time), switches
    WebDriver to this window if another session's command went elsewhere, and runs."""

    def __init__(self, engine: "Engine", base: Driver, handle: str):
        self.engine, self.base, self.window = engine, base, handle

    def _do(self, f, *args):
        e = self.engine
        e._wait_turn(self)
        with e._cmd:
            e._begin_turn(self)
            if e._current != self.window:
                e._current = None
                self.base.switch(self.window)
                e._current = self.window
            return f(*args)

    def navigate(self, url):
        return self._do(self.base.navigate, url)

    def execute(self, script, *args):
        return self._do(self.base.execute, script, *args)

    def screenshot(self):
        return self._do(self.base.screenshot)

    def page_start(self, fn, arg):
        return self._do(self.base.page_start, fn, arg)

    def exclusive(self):
        return self.engine.exclusive(self)

    def page_result(self):
        return self._do(self.base.page_result)

    def page_csp(self):
        return self._do(self.base.page_csp)

    def page_stop(self):
        return self._do(self.base.page_stop)


class Engine:
    """One engine process for the whole run, started on first use; several sessions at once,
    each in a browser window of its own (``_Window``), their WebDriver commands one at a time."""
    name = ""          # "webkit", "firefox"
    label = ""         # "WebKit", "Firefox"
    scenario = ""
    install_hint = ""

    def __init__(self):
        self._lock = threading.Lock()        # guards start, close and the bookkeeping below (held briefly,
        self._changed = threading.Condition(self._lock)   # and for a start)
        self._cmd = threading.Lock()         # one WebDriver command at a time
        self._driver: Driver | None = None
        self._active = 0                     # sessions in progress
        self._expected: int | None = None    # sessions the run has for this engine (``start``), if said
        self._begun = 0                      # sessions begun since
        self._free: list[str] = []           # windows no session uses now
        self._current: str | None = None     # the window WebDriver's commands go to now
        self._turn: object | None = None     # who has WebDriver to itself now (``exclusive``)
        self._turn_until = 0.0               # ... until then at the latest (monotonic s)
        self._turn_began = False             # its first command has run
        self._spare = False                  # a spare window is being opened
        self._used = False                   # a session has run since the start
        self._procs: list[subprocess.Popen] = []
        self._tmp: list[str] = []
        self._aborted = False
        self._idle: threading.Timer | None = None
        self._insecure: bool | None = None
        self.version = ""
        self.start_s: float | None = None    # how long the last start took
        self.most_at_once = 0                # the most sessions in progress at once (for the tests)

    # -- availability --------------------------------------------------------------------------
    def missing(self) -> str | None:
        """Why this engine cannot run here (None: it can)."""
        raise NotImplementedError

    def unavailable(self) -> str | None:
        why = self.missing()
        return f"{why}: {self.install_hint}" if why else None

    # -- life --------------------------------------------------------------------------------------
    def start(self, insecure: bool, windows: int | None = None) -> None:
        """Start the engine for this TLS policy if it is not running (``prestart``), with
        a free window for each of the ``windows`` sessions the run has for it (at most ``AT_ONCE``;
        None: not said, two, as two targets' sessions often come together): a window opened
        while other sessions' pages start waits its turn behind them and they behind it (a run of
        ten URL targets opened Firefox's windows 1.8-3.6 s apart and started its first streams 7-9
        s late: measured), where before them it costs nothing. It is closed when idle."""
        with self._changed:
            self._ready_locked(insecure)
            base = self._driver
            self._expected, self._begun = windows, 0
            want = min(AT_ONCE, 2 if windows is None else windows)
            self._idle_locked()
        while True:
            with self._changed:
                if self._driver is not base or self._aborted or self._active or len(self._free) >= want:
                    return
            handle = self._open_window(base)
            with self._changed:
                if self._driver is base:
                    self._free.append(handle)

    def _ready_locked(self, insecure: bool) -> None:
        """Under ``_lock``: the engine running with this TLS policy. A browser of the other policy
        is closed and a new one started once its sessions have ended (a run of mixed policies)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        while True:
            if self._aborted:
                raise EngineStartError("the run was interrupted")
            if self._driver is not None and self._insecure == insecure:
                return
            if self._active == 0:
                break
            self._changed.wait(0.5)   # an abort does not notify
        self._close_locked()
        started = time.monotonic()
        for attempt in range(START_ATTEMPTS):
            try:
                self._driver = self._start(insecure)
                self._free = [self._driver.handle()]
                self._current = self._free[0]
                break
            except EngineStartError:
                self._close_locked()
                raise
            except Exception as e:  # noqa: BLE001
                self._close_locked()
                if attempt + 1 == START_ATTEMPTS or self._aborted:
                    raise EngineStartError(f"{self.label} did not start: {type(e).__name__}: {_first_line(e)}") from None
        self._insecure = insecure
        self._used = False
        self.start_s = round(time.monotonic() - started, 3)

    def run(self, session, insecure: bool):
        """``session(driver)`` in a browser window of its own, the engine started (a new browser
        session when the TLS policy changes); other sessions may run at the same time, each in its
        window, at most ``AT_ONCE`` (more wait for a window to be free). The window is left on
        about:blank for the next session; the engine is closed when idle."""
        with self._changed:
            while self._active >= AT_ONCE and not self._aborted:
                self._changed.wait(0.5)   # an abort does not notify
            self._ready_locked(insecure)
            self._active += 1
            self._used = True
            self.most_at_once = max(self.most_at_once, self._active)
            base = self._driver
        window = None
        try:
            window = self._take_window(base)
            return session(_Window(self, base, window))
        except Exception:
            if self._aborted:
                self.close()
            raise
        finally:
            if window is not None and not self._aborted:
                self._give_back(base, window)
            with self._changed:
                self._active -= 1
                self._changed.notify_all()
                self._idle_locked()

    def _take_window(self, base: Driver) -> str:
        """A free window, or a new one. Opening one takes 0.2-0.6 s of WebDriver's time on an idle
        machine and 1-4 s on a busy one (measured), and whoever takes the last free window has a
        spare opened behind it, unless the run said how many sessions it has (``start``'s
        ``windows``) and all have begun (a spare opened beside the last page delays its commands)."""
        with self._changed:
            self._begun += 1
            if self._free:
                handle = self._free.pop()
                if not self._free and (self._expected is None or self._begun < self._expected):
                    self._spare_locked(base)
                return handle
        return self._open_window(base)

    def _spare_locked(self, base: Driver) -> None:
        if not self._spare and base is not None and self._active + len(self._free) < AT_ONCE:
            self._spare = True
            threading.Thread(target=self._open_spare, args=(base,), name=f"{self.name}-spare", daemon=True).start()

    def _open_window(self, base: Driver) -> str:
        """A new window, in a turn of its own (``exclusive``): no page's first moments are timed
        while the browser makes it (with the opening beside them, Firefox answered a page's
        looks up to 3 s late: measured), and the turn lasts until a script has run in it."""
        opener = object()
        with self.exclusive(opener), self._cmd:
            self._begin_turn(opener)
            self._current = None          # a new window may take WebDriver's focus
            handle = base.new_window()
            base.switch(handle)
            self._current = handle
            base.execute("return document.readyState")
            return handle

    def _open_spare(self, base: Driver) -> None:
        try:
            handle = self._open_window(base)
        except Exception:  # noqa: BLE001 - the next session opens its own
            handle = None
        with self._changed:
            self._spare = False
            if handle is not None and self._driver is base:
                self._free.append(handle)

    @contextlib.contextmanager
    def exclusive(self, holder):
        """WebDriver serves ``holder``'s commands only, while the time of what it does depends on
        how soon its commands run: a countdown page from its navigation until its observer is in
        (the groups already there are timed at the install), or a window being opened. One holder
        at a time; the others' commands wait (``_wait_turn``) until it is done, or at most
        ``EXCLUSIVE_MAX_S`` after its first command began (a command of another session still
        running when the turn was taken is waited for: the holder's navigation comes after it)."""
        with self._changed:
            while self._turn is not None and self._turn is not holder and time.monotonic() < self._turn_until:
                self._changed.wait(max(0.0, self._turn_until - time.monotonic()))
            self._turn, self._turn_began = holder, False
            self._turn_until = time.monotonic() + EXCLUSIVE_MAX_S + TURN_FIRST_S
        try:
            yield
        finally:
            with self._changed:
                if self._turn is holder:
                    self._turn = None
                self._changed.notify_all()

    def _begin_turn(self, holder) -> None:
        """``holder``'s first command has WebDriver (under ``_cmd``): its turn's bound starts now."""
        if self._turn is holder and not self._turn_began:
            with self._changed:
                if self._turn is holder:
                    self._turn_began = True
                    self._turn_until = time.monotonic() + EXCLUSIVE_MAX_S
                    self._changed.notify_all()

    def _wait_turn(self, who) -> None:
        """Before a command of ``who``: wait while another holds WebDriver (``exclusive``)."""
        with self._changed:
            while self._turn is not None and self._turn is not who and time.monotonic() < self._turn_until:
                self._changed.wait(max(0.0, self._turn_until - time.monotonic()))

    def _give_back(self, base: Driver, window: str) -> None:
        """The session's window back to the free ones, on about:blank: what its page was still
        loading or reading stops now (navigating away ends the page's requests), and the next
        session's page starts from an empty one (a countdown page's first moments are timed)."""
        try:
            _Window(self, base, window).navigate("about:blank")
        except Exception:  # noqa: BLE001 - a window that cannot be driven is not used again
            return
        with self._changed:
            if self._driver is base:
                self._free.append(window)

    def _idle_locked(self) -> None:
        if self._active == 0 and not self._aborted and self._driver is not None:
            if self._idle is not None:
                self._idle.cancel()
            self._idle = threading.Timer(IDLE_CLOSE_S if self._used else PRESTARTED_IDLE_S, self._idle_close)
            self._idle.daemon = True
            self._idle.start()

    def _idle_close(self) -> None:
        with self._changed:
            if self._active == 0:
                self._close_locked()

    def _start(self, insecure: bool) -> Driver:
        raise NotImplementedError

    def _quit(self) -> None:
        """Ask the driver to end its session (best effort; the process groups are killed after)."""

    def close(self) -> None:
        with self._changed:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._driver is not None and not self._aborted:
            try:
                self._quit()
            except Exception:  # noqa: BLE001 - the processes are killed next
                pass
        self._driver = None
        self._insecure = None
        self._free, self._current, self._turn = [], None, None
        self._expected = None
        procs, self._procs = self._procs, []
        for p in reversed(procs):
            _kill_group(p)
        for d in self._tmp:
            shutil.rmtree(d, ignore_errors=True)
        self._tmp = []
        self._changed.notify_all()

    def abort(self) -> None:
        """The run was interrupted: kill the engine's processes now (the sessions in progress then
        fail; no engine starts again until ``reset_abort``)."""
        self._aborted = True
        if self._idle is not None:
            self._idle.cancel()
        _side_by_side([lambda p=p: _kill_group(p, grace=0.5) for p in list(self._procs)])

    def reset_abort(self) -> None:
        with self._changed:
            self._aborted = False
            if self._active == 0:
                self._close_locked()

    def pids(self) -> list[int]:
        """The process groups this engine runs now (for the suite's own tests)."""
        return [p.pid for p in self._procs if p.poll() is None]

    def _spawn(self, argv: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self._procs.append(p)
        return p


# --- WebKit: WebKitWebDriver + MiniBrowser under Xvfb, driven with Selenium --------------------

class _SeleniumDriver(Driver):
    def __init__(self, d):
        self.d = d

    def navigate(self, url):
        self.d.get(url)

    def execute(self, script, *args):
        return self.d.execute_script(script, *args)

    def handle(self):
        return self.d.current_window_handle

    def new_window(self):
        """A new top-level window (not a tab: WebKitGTK throttles a background tab's timers to
        1/s and stops its animation frames; its windows on Xvfb all get both at full rate,
        measured), WebDriver switched to it."""
        self.d.switch_to.new_window("window")
        return self.d.current_window_handle

    def switch(self, handle):
        self.d.switch_to.window(handle)

    def screenshot(self):
        try:
            return self.d.get_screenshot_as_png()
        except Exception:  # noqa: BLE001 - for the report only
            return None


def _webkit_driver() -> str | None:
    env = os.environ.get(WEBKIT_ENV)
    if env:
        return env if os.access(env, os.X_OK) else None
    return shutil.which("WebKitWebDriver") or (WEBKIT_DRIVER if os.access(WEBKIT_DRIVER, os.X_OK) else None)


def _minibrowser() -> str | None:
    return next((p for p in WEBKIT_BROWSERS if os.access(p, os.X_OK)), None)


class WebKit(Engine):
    name, label, scenario = "webkit", "WebKit", "browser-webkit"
    install_hint = ("install WebKitGTK's WebDriver and a virtual display, and Selenium: `apt-get install -y "
                    "webkit2gtk-driver xvfb` and `pip install selenium` (the suite drives WebKitGTK's MiniBrowser "
                    f"under Xvfb; set {WEBKIT_ENV} to use another WebKitWebDriver)")

    def missing(self):
        import importlib.util
        if importlib.util.find_spec("selenium") is None:
            return "the selenium package is not installed"
        if _webkit_driver() is None:
            return "WebKitWebDriver is not installed"
        if _minibrowser() is None:
            return "WebKitGTK's MiniBrowser is not installed"
        if shutil.which("Xvfb") is None:
            return "Xvfb is not installed"
        return None

    def _start(self, insecure):
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service
        display = self._xvfb()
        opts = Options()
        opts.binary_location = _minibrowser()
        opts.add_argument("--automation")
        opts.page_load_strategy = "none"
        opts.accept_insecure_certs = insecure
        env = dict(os.environ, DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1")
        service = Service(executable_path=_webkit_driver(), env=env,
                          popen_kw={"start_new_session": True})
        service.start()
        self._procs.append(service.process)
        d = webdriver.WebKitGTK(options=opts, service=service)
        self._selenium = d
        self.version = f"WebKitGTK {d.capabilities.get('browserVersion', '')}".strip()
        return _SeleniumDriver(d)

    def _xvfb(self) -> str:
        """A virtual display of our own (X picks the number and writes it to a pipe)."""
        read, write = os.pipe()
        try:
            self._spawn(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"], pass_fds=(write,),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.close(write)
            write = -1
            deadline = time.monotonic() + 20
            got = b""
            while not got.endswith(b"\n") and time.monotonic() < deadline:
                chunk = os.read(read, 16)
                if not chunk:
                    break
                got += chunk
        finally:
            if write >= 0:
                os.close(write)
            os.close(read)
        if not got.strip():
            raise EngineStartError("Xvfb did not start (no display number)")
        return ":" + got.decode().strip()

    def _quit(self):
        d = getattr(self, "_selenium", None)
        self._selenium = None
        if d is not None:
            # quit() also stops the service; a driver that hangs is killed with its group after
            t = threading.Thread(target=_try, args=(d.quit,), daemon=True)
            t.start()
            t.join(5)


# --- Firefox: firefox-esr with Marionette, driven with marionette_driver -----------------------

class _MarionetteDriver(Driver):
    def __init__(self, m):
        self.m = m

    def navigate(self, url):
        self.m.navigate(url)

    def execute(self, script, *args):
        return self.m.execute_script(script, script_args=list(args), new_sandbox=False)

    def page_start(self, fn, arg):
        """Marionette's scripts run in a sandbox that sees the page through Xrays, where a fetch()
        reader's Uint8Array cannot be read: a script element runs it in the page itself (False:
        the page's Content-Security-Policy did not let it run)."""
        return self.execute(PAGE_ELEMENT_START_JS, fn, json.dumps(arg)) is not False

    def page_stop(self):
        self.execute(PAGE_ELEMENT_STOP_JS)

    def handle(self):
        return self.m.current_window_handle

    def new_window(self):
        """A new top-level window, not focused (not a tab: Firefox throttles a background tab's
        timers to 1/s and its animation frames to well under 1/s; its headless windows all get
        both at full rate, measured)."""
        return self.m.open(type="window", focus=False)["handle"]

    def switch(self, handle):
        self.m.switch_to_window(handle, focus=False)

    def screenshot(self):
        try:
            return self.m.screenshot(format="binary")
        except Exception:  # noqa: BLE001 - for the report only
            return None


def _firefox() -> str | None:
    env = os.environ.get(FIREFOX_ENV)
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("firefox-esr", "firefox"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Firefox(Engine):
    name, label, scenario = "firefox", "Firefox", "browser-firefox"
    install_hint = ("install Firefox and Mozilla's Marionette client: `apt-get install -y firefox-esr` and "
                    f"`pip install marionette-driver` (set {FIREFOX_ENV} to use another Firefox binary)")

    def missing(self):
        import importlib.util
        if importlib.util.find_spec("marionette_driver") is None:
            return "the marionette_driver package is not installed"
        if _firefox() is None:
            return "Firefox is not installed (no firefox-esr nor firefox on the PATH)"
        return None

    def _start(self, insecure):
        from marionette_driver.marionette import Marionette
        profile = tempfile.mkdtemp(prefix="conformance-firefox-")
        self._tmp.append(profile)
        prefs = dict(FIREFOX_PREFS)
        Path(profile, "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                                                    for k, v in prefs.items()), encoding="utf-8")
        env = dict(os.environ, MOZ_CRASHREPORTER_DISABLE="1", MOZ_HEADLESS="1", HOME=profile)
        env.pop("DISPLAY", None)
        proc = self._spawn([_firefox(), "--headless", "--marionette", "--no-remote", "--profile", profile],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(profile, "MarionetteActivePort")
        deadline = time.monotonic() + START_TIMEOUT_S
        port = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                port = int(port_file.read_text().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        if port is None:
            raise EngineStartError(f"Firefox ({_firefox()}) did not open its Marionette port"
                                   + (f" (exit {proc.returncode})" if proc.poll() is not None else ""))
        m = Marionette(host="127.0.0.1", port=port, startup_timeout=30)
        m.start_session({"pageLoadStrategy": "none", "acceptInsecureCerts": insecure})
        self._marionette = m
        m.navigate("about:blank")   # the first content process starts now, not during a target's page
        m.execute_script("return 1")
        caps = m.session_capabilities
        self.version = f"Firefox {caps.get('browserVersion', '')}".strip()
        return _MarionetteDriver(m)

    def _quit(self):
        m = getattr(self, "_marionette", None)
        self._marionette = None
        if m is not None:
            t = threading.Thread(target=_try, args=(m.delete_session,), daemon=True)
            t.start()
            t.join(5)


ENGINES: dict[str, Engine] = {e.name: e for e in (WebKit(), Firefox())}


def prestart(names=None, insecure: bool = False, windows: int | None = None) -> None:
    """Start the named engines (all) side by side, each on a thread, each with ``windows`` free
    windows (``Engine.start``); errors are left for the sessions to meet and say."""
    threads = [threading.Thread(target=lambda e=e: _try(lambda: e.start(insecure, windows)), daemon=True)
               for n, e in ENGINES.items() if names is None or n in names if e.unavailable() is None]
    for t in threads:
        t.start()
    for t in threads:
        t.join(START_TIMEOUT_S + 10)


def _try(f):
    try:
        f()
    except Exception:  # noqa: BLE001
        pass


def _side_by_side(calls) -> None:
    """Run each call on a thread of its own and wait for all: an interrupted run kills every
    engine's process groups at once (one after another, each group's grace added up to seconds
    before the run could exit)."""
    threads = [threading.Thread(target=c, daemon=True) for c in calls]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def abort_all() -> None:
    _side_by_side([e.abort for e in ENGINES.values()])


def reset_abort() -> None:
    for e in ENGINES.values():
        e.reset_abort()


def close_all() -> None:
    for e in ENGINES.values():
        e.close()


atexit.register(close_all)


# --- the sessions ------------------------------------------------------------------------------

def _png_b64(png: bytes | None) -> str | None:
    import base64
    return base64.b64encode(png).decode() if png else None


def countdown_session(driver: Driver, engine: Engine, ctx: Context, rec: BrowserRecording) -> None:
    """Load the countdown page; watch it enter the DOM; a screenshot half-way."""
    target = ctx.target
    span = target.expected_span()
    budget = min(ctx.deadline, span + ctx.timeout + 5)
    out = PageRecord(ctx.url)
    rec.countdown = out
    rec.holder_note = f"the holder page is loaded in Chromium only ({engine.label} loads the countdown page)"
    with contextlib.ExitStack() as first_moments:
        # the engine's WebDriver serves this session alone until its observer is in the page
        first_moments.enter_context(driver.exclusive())
        _watch_countdown(driver, engine, ctx, rec, out, span, budget, first_moments)


def _watch_countdown(driver, engine, ctx, rec, out, span, budget, first_moments) -> None:
    """countdown_session's load and look: ``first_moments`` is closed once the observer is in."""
    after = time.time() * 1000 - 50
    started = time.monotonic()
    rec.started_at = time.time()
    driver.navigate(ctx.url)
    shot_at, state, fresh, installed_at, install_gap, last_look = span / 2, None, None, None, None, None
    hidden = None
    while time.monotonic() - started < budget:
        try:
            state = driver.execute(POLL_JS, ctx.url, after)
        except Exception:  # noqa: BLE001 - between two documents a script may fail: look again
            state = None
        now = time.monotonic()
        if state and state.get("fresh"):
            if installed_at is None and state.get("installed"):
                installed_at = state["now"] / 1000
                # how long before this look the previous one returned: the groups found at the
                # install came within it
                install_gap = now - (last_look if last_look is not None else started)
                first_moments.close()
            fresh = state
            if state.get("visibility") not in (None, "visible") and hidden is None:
                hidden = round(now - started, 3)
        if state is not None:
            last_look = now
        if out.screenshot is None and time.monotonic() - started >= shot_at:
            at = time.monotonic() - started
            png = driver.screenshot()
            out.screenshot = {"at_s": round(at, 3), "png_base64": _png_b64(png),
                              "note": f"taken {at:.2f} s after the navigation began (half-way through the producer's "
                                      f"schedule) by WebDriver ({engine.label} draws the page for it)"}
        if fresh and state and state.get("fresh") and state.get("state") == "complete":
            out.loaded = True
            break
        time.sleep(POLL_S if installed_at is None else LOOK_S)
    else:
        out.load_error = f"the page had not finished loading after {budget:.0f} s"
    if hidden is not None:
        # a hidden page's animation frames and timers are throttled (to 1/s or none): its paint
        # times would be the throttling's, not the engine's way with the stream
        rec.skip_reason = (f"{engine.label}'s window for the page was hidden {hidden:.2f} s into the load (its animation "
                           "frames and timers are then throttled): its paint times would not be the engine's, so they "
                           "are not judged")
        return
    if fresh is None:
        out.load_error = out.load_error or f"{engine.label} never showed the page"
        return
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        try:
            if driver.execute(SETTLED_JS):
                break
        except Exception:  # noqa: BLE001
            break
        time.sleep(0.05)
    if out.screenshot is None:
        out.screenshot = {"at_s": round(time.monotonic() - started, 3), "png_base64": _png_b64(driver.screenshot()),
                          "note": "the page had finished loading before half-way; taken after its load event"}
    try:
        raw = driver.execute(COLLECT_JS)
    except Exception as e:  # noqa: BLE001
        out.load_error = f"the page's record could not be read: {_first_line(e)}"
        return
    data = json.loads(raw) if raw else None
    if not data:
        return
    _fill(out, data, data["origin"], None, countdown_count(urlsplit(ctx.url).path))
    # the observer's Element Timing entries, where the engine has the API (neither does yet)
    if installed_at is not None:   # groups in the DOM before this were timed at it
        out.navigation["observer_installed"] = round(installed_at, 4)
        out.navigation["observer_gap"] = round(install_gap, 4)
    out.element_timing = any(g.get("rendered_s") is not None for g in out.groups.values())
    # the navigation's own answer: WebDriver does not say it; the navigation timing's
    # responseStatus where the engine has it
    nav = data.get("nav") or {}
    out.status = nav.get("responseStatus") or (rec.reference.status if rec.reference is not None else None)
    if rec.reference is not None:
        out.content_type = next((v for k, v in rec.reference.headers if k.lower() == "content-type"), None)
    rec.duration_s = round(time.monotonic() - started, 3)


def stream_session(driver: Driver, engine: Engine, ctx: Context, rec: BrowserRecording) -> None:
    """Read an SSE, NDJSON or bytes stream with the page script, on the target's origin."""
    target = ctx.target
    url = ctx.url
    parts = urlsplit(url)
    blank = urlunsplit((parts.scheme, parts.netloc, BLANK_PATH, "", ""))
    after = time.time() * 1000 - 50
    driver.navigate(blank)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            st = driver.execute("const a = arguments[0]; const f = performance.timeOrigin >= a && "
                                "location.origin === arguments[1]; if (f) window.stop(); return f;",
                                after, f"{parts.scheme}://{parts.netloc}")
        except Exception:  # noqa: BLE001
            st = False
        if st:
            break
        time.sleep(0.05)
    else:
        rec.error = f"{engine.label} could not open a page of {parts.scheme}://{parts.netloc} ({BLANK_PATH})"
        return
    profile = target.profile
    kind = "sse" if profile == "sse" else "auto" if profile is None else "fetch"
    types = sse_types(rec.reference.body) if rec.reference is not None else []
    watch = _stream_watch(ctx)
    opts = {"url": url, "kind": kind, "types": types, "preview": kind == "sse" and rec.reference is None,
            "watchMs": watch * 1000, "idleMs": ctx.timeout * 1000, "keep": BODY_KEEP, "maxEvents": PIECES_KEEP,
            "sseMedia": SSE_MEDIA}
    started = time.monotonic()
    rec.started_at = time.time()
    budget = _stream_budget(ctx)
    ran = driver.page_start(STREAM_JS.strip(), opts)
    raw = _await_result(driver, started + budget, engine) if ran else None
    if raw is None and ran:   # the script did not end by itself: stop it, take what it has
        driver.page_stop()
        raw = _await_result(driver, time.monotonic() + STOP_WAIT_S, engine)
    data = json.loads(raw) if raw else {"events": [], "error": "the page's script returned nothing"}
    csp = _page_csp(driver) if data.get("error") or not ran else None
    if csp or not ran:
        rec.skip_reason = (f"{engine.label} could not read the stream from a page of the target's origin: that page, the "
                           f"target's own answer to {BLANK_PATH}, forbids the page's script "
                           f"{'to run' if not ran else 'its request'} ({csp or 'Content-Security-Policy'}); Chromium's "
                           "page of the origin is made by the suite, not loaded from the target")
        rec.duration_s = round(time.monotonic() - started, 3)
        return
    data.setdefault("kind", "sse" if kind == "sse" else None)   # the API asked for, where the script said nothing
    rec.stream = stream_record(data, url, profile, engine.label)
    rec.duration_s = round(time.monotonic() - started, 3)


def _page_csp(driver: Driver) -> str | None:
    """The page's Content-Security-Policy violation, looked for a little while (the browser
    reports it as an event, after the script's own error)."""
    until = time.monotonic() + 1.0
    while True:
        try:
            csp = driver.page_csp()
        except Exception:  # noqa: BLE001 - a page that cannot be asked has said nothing
            return None
        if csp or time.monotonic() >= until:
            return csp
        time.sleep(0.1)


def _await_result(driver: Driver, until: float, engine: Engine | None = None) -> str | None:
    """The page script's result (JSON text), looked for every ``RESULT_POLL_S`` per session the
    engine has in progress (at most ``RESULT_POLL_MAX_S``) until ``until`` (monotonic s); None if
    it has not settled by then. The script times what it reads itself (``performance.now()``), so
    these looks change no time it records."""
    while True:
        raw = driver.page_result()
        if raw or time.monotonic() >= until:
            return raw or None
        poll = min(RESULT_POLL_MAX_S, RESULT_POLL_S * max(1, engine._active if engine is not None else 1))
        time.sleep(min(poll, max(0.0, until - time.monotonic())))


def stream_record(data: dict, url: str, profile: str | None, label: str) -> StreamRecord:
    """The page script's findings, in seconds after it called EventSource or fetch()."""
    sse = data.get("kind") == "sse"
    api = "new EventSource(url): message and named events" if sse else "fetch(url).body.getReader().read()"
    headers = [list(h) for h in data.get("headers") or []]
    if profile is None:
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "") or ""
        profile = "sse" if sse else MEDIA_PROFILES.get(ctype.split(";")[0].strip().lower(), "bytes")
    out = StreamRecord(url, profile, api)
    called = data.get("called") or 0.0
    rel = lambda ms: round((ms - called) / 1000, 5)   # noqa: E731
    out.clock = f"seconds after the page's script called {'EventSource' if sse else 'fetch()'} ({label})"
    out.status = data.get("status") if data.get("status") is not None else (200 if data.get("opened") is not None
                                                                            else None)
    out.response_headers = headers
    if data.get("head") is not None:
        out.head_s = rel(data["head"])
    elif data.get("opened") is not None:
        out.head_s = rel(data["opened"])
    out.events = [[rel(e[0]), *e[1:]] for e in data.get("events") or []]
    out.events_dropped = data.get("dropped") or 0
    out.body_bytes = data.get("bytes") or 0
    out.end = data.get("end") or ("error" if data.get("error") else None)
    out.end_s = rel(data["endAt"]) if data.get("endAt") is not None else None
    out.error = data.get("error")
    out.listened = list(data.get("listened") or [])
    return out


def run_engine(engine: Engine, ctx: Context) -> BrowserRecording:
    """The scenario of one engine: the countdown page, or the stream read by the page's script."""
    target = ctx.target
    rec = BrowserRecording(engine.scenario, ctx.url or "", count=target.countdown_length, interval_s=target.interval)
    rec.target = target
    get = ctx.recorded("get") if ctx.recorded else None
    rec.reference = get if isinstance(get, Recording) and not get.error else None
    if target.profile == "countdown" and target.countdown_length is None:
        rec.skip_reason = "the browser check loads a countdown page (GET /N); this countdown's length is not known"
        return rec
    why = engine.unavailable()
    if why:
        rec.skip_reason = why
        return rec
    if target.profile == "countdown":
        session = lambda d: countdown_session(d, engine, ctx, rec)   # noqa: E731
    else:
        session = lambda d: stream_session(d, engine, ctx, rec)   # noqa: E731
    try:
        engine.run(lambda d: (setattr(rec, "browser", engine.version), session(d)), target.insecure)
    except EngineStartError as e:
        rec.skip_reason = str(e)
    except Exception as e:  # noqa: BLE001 - an engine that cannot be driven is said, not raised
        if rec.error is None:
            rec.skip_reason = f"{engine.label} could not be driven: {type(e).__name__}: {_first_line(e)}"
    return rec


NON_GET = "reads GET streams only so far: a request with another method is read by Chromium's fetch()"


def known_skip(engine: Engine, ctx: Context) -> BrowserRecording | None:
    """Known before anything is sent (``Scenario.skip``): a request that is not a GET is not read
    by WebKit or Firefox yet (Chromium reads it through ``fetch()``), so nothing is sent for it."""
    if getattr(ctx.target, "method", "GET") == "GET":
        return None
    rec = BrowserRecording(engine.scenario, ctx.url or "")
    rec.skip_reason = f"{engine.label} {NON_GET}"
    return rec


for _engine in ENGINES.values():
    register(Scenario(_engine.scenario, f"{_engine.label} over WebDriver: the countdown page; SSE through "
                      "EventSource, NDJSON and bytes through a fetch() body reader",
                      lambda ctx, e=_engine: run_engine(e, ctx), skip=lambda ctx, e=_engine: known_skip(e, ctx)))
