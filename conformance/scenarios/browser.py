"""A real browser: Debian's Chromium, driven with Playwright, loads the countdown page, and reads
SSE, NDJSON and bytes streams as a page's script does.

For an SSE, NDJSON or bytes target (``StreamRecord``): Playwright fulfils a blank page at the
target's own origin (``BLANK_PATH``, never asked of the target), and its script reads the
target's URL same-origin: SSE with ``EventSource``, listening for ``message`` and for every named
type the raw recorder's GET carried (without that GET, a first ``fetch()`` reads the first event
to learn them; a type DevTools sees first mid-stream is listened for from then on), NDJSON and
bytes with a ``fetch()`` body reader. The script takes ``performance.now()`` as it gets each
event or chunk (an NDJSON line completes with the chunk that holds its newline), and stops at the
target's watch window (``Context.watch``), after an idle timeout, or when the stream ends (an
``EventSource`` is closed at its first error, so it never reconnects). DevTools gives the same
request's headers as sent and received (the Accept-Encoding Chromium sent, the Content-Encoding it
got), its timing, and when the network service handed on each piece or parsed each SSE message.
Chromium's wall-to-monotonic mapping (``wallTime`` and ``timestamp`` of one DevTools event) puts
the script's times on DevTools' clock, so every time is seconds after the request was sent
(``sendEnd``), as the raw recorder counts from its request's last byte. The check judges what the
script got with the client checks' judge (``judge_client``: ``delivery.first-byte`` and
``delivery.progressive``), beside the network service's view and the raw recorder's GET.

What the countdown scenario records (the countdown page):

- the countdown page (the target's URL): when each of the countdown's groups (the opening
  ``<h2>``/``<ul>``, each ``Liftoff in N`` item, the closing ``Lift off``) *enters the DOM*,
  seen by a ``MutationObserver`` that an init script installs before the page's first byte is
  parsed, and when it is *painted*: the Element Timing API's ``renderTime`` (the frame's
  presentation time) of the element that holds it, or the next ``requestAnimationFrame`` where
  no element of its own holds it (a ``text/plain`` page). All times are the page's own clock,
  ``performance.now()``, in seconds after navigation start;
- the browser's navigation timing (request and response start, response end, load event) and
  its first paint, so the DOM times can be read against the wire;
- a screenshot taken half-way through the producer's schedule (what a user sees mid-countdown;
  a blank page where the body is held), PNG bytes kept as base64;
- for built-in targets, the seed's holder page ``/`` with its four iframes: when each iframe
  entered the holder's DOM and each iframe's own groups, on the holder's clock, plus a
  screenshot half-way. The judge notes it; it does not change the verdict.

The browser is the system's Chromium (``CONFORMANCE_CHROMIUM``, else ``chromium`` on the PATH,
else ``/usr/bin/chromium``), launched by Playwright with ``executable_path``, headless, with a
fresh temporary profile and the flags a machine without internet needs; Playwright never
downloads a browser here. Without Chromium or without the ``playwright`` package the record
says why and the check is ``skip`` with the install hint.

What Chromium 156 does (measured; the figures are in each finding's observed text): on the
corrected app and on the seed alike each item enters the DOM within a few milliseconds of its
bytes and is painted in the next frame; the seed's ``text/html`` without a charset holds nothing,
because its body starts with ``<h2>``, a body element, which ends the encoding prescan at once
(and Chromium does not wait for 1024 bytes); its doubled ``Transfer-Encoding: chunked`` header
does not trouble Chromium either. A body held by the server enters the DOM in one burst at the
end. A response without ``Content-Type`` is held by Chromium's MIME sniffing (the countdown's
few hundred bytes, whole, until the body ends) and then shown as text.

One Chromium per process (``Browser``), on a thread of its own that owns Playwright's event
loop: launched on first use, shared by the targets' sessions one at a time (a second page
loading side by side on a two-core machine would only add noise to the timings the check
judges), each session in a fresh browser context (no cookies, cache or storage carried over),
and closed when idle for ``IDLE_CLOSE_S``, when a session overruns, and at exit. Starting
Playwright's driver and Chromium costs about two seconds; paying it once per run instead of
once per target keeps a run over many targets short.
"""
from __future__ import annotations

import asyncio
import atexit
import base64
import bisect
import importlib.util
import json
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from conformance.analysis.inferred import units_of
from conformance.analysis.target import MEDIA_PROFILES
from conformance.analysis.timing import split_bursts
from conformance.analysis.units import countdown_count, countdown_group_offsets
from conformance.scenarios.base import Context, Scenario, register
from conformance.scenarios.clients import ClientRun
from conformance.wire.recording import BODY_KEEP, PIECES_KEEP, Recording, redact

SCENARIO = "browser"
CHROMIUM_ENV = "CONFORMANCE_CHROMIUM"
INSTALL_HINT = ("install Debian's Chromium and the Playwright package: `apt-get install -y chromium` and "
                "`pip install 'http-streaming-conformance[browser]'` (the suite drives the system Chromium and "
                f"never downloads a browser; set {CHROMIUM_ENV} to use another Chromium binary)")
# Flags for a machine without internet (nothing phones home, no QUIC, no first-run UI) that may
# be a container without user namespaces (no sandbox) or a GPU.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--no-default-browser-check")
VIEWPORT = {"width": 960, "height": 640}
# The holder page's schedule on the built-in web.py targets, in producer intervals: four iframes
# three intervals apart, the last one counting 7 items: 3 * 3 + 7 + 1 = 17 intervals.
HOLDER_SPAN_INTERVALS = 17
HOLDER_PATH = "/"
# After the load event: how long to wait for the last paint entries (a frame is ~17 ms).
SETTLE_S = 1.0
CHUNKS_KEEP = 5000   # network pieces kept per document
# The shared browser closes after this long without a session (and always at exit).
IDLE_CLOSE_S = 30.0
ABORT_CLOSE_WAIT = 2.0   # after an interrupt, closing Chromium at exit waits at most this long

# Runs in every frame before the page's own bytes are parsed. It keeps its findings in a
# non-enumerable window property that the page cannot see by accident. Group keys: "open" (the
# opening heading or list), "i<N>" ("Liftoff in N"), "end" (the closing "Lift off").
OBSERVER_JS = r"""
(() => {
  if (window.__conformance) return;
  const rec = {origin: performance.timeOrigin, groups: {}, iframes: [], paints: [], elementTiming: false};
  Object.defineProperty(window, "__conformance", {value: rec, enumerable: false});
  const PATTERNS = [
    [/Prepare for Launch/i, () => "open"],
    [/Liftoff in\s*(\d+)(?=\D)/gi, m => "i" + m[1]],
    [/Lift\s+off/i, () => "end"],
  ];
  let tagged = 0;
  function holderOf(key) {
    // the innermost element whose text holds the group: a text node matching it, its parent
    const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const text = n.data;
      for (const [re, name] of PATTERNS) {
        re.lastIndex = 0;
        const all = re.global ? [...text.matchAll(re)] : [text.match(re)].filter(Boolean);
        if (all.some(m => name(m) === key)) return n.parentElement;
      }
    }
    return null;
  }
  function scan() {
    const now = performance.now();
    const root = document.documentElement;
    if (!root) return;
    const text = root.textContent || "";
    const fresh = [];
    for (const [re, name] of PATTERNS) {
      re.lastIndex = 0;
      const all = re.global ? [...text.matchAll(re)] : [text.match(re)].filter(Boolean);
      for (const m of all) {
        const key = name(m);
        if (key in rec.groups) continue;
        rec.groups[key] = {inserted: now, frame: null, rendered: null, shared: false};
        fresh.push(key);
      }
    }
    for (const key of fresh) {
      const el = holderOf(key);
      if (el && !el.hasAttribute("elementtiming")) el.setAttribute("elementtiming", "cf:" + key);
      else rec.groups[key].shared = true;   // its element was painted before: rAF time only
    }
    for (const node of document.querySelectorAll("iframe:not([data-cf-seen])")) {
      node.setAttribute("data-cf-seen", "");
      rec.iframes.push({src: node.getAttribute("src") || "", inserted: now});
    }
    if (fresh.length) requestAnimationFrame(() => {
      const t = performance.now();
      for (const key of fresh) rec.groups[key].frame = t;
    });
  }
  new MutationObserver(scan).observe(document, {childList: true, subtree: true, characterData: true});
  scan();   // installed after the page's first bytes (WebDriver engines): what is there already
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries()) {
        const key = (e.identifier || "").startsWith("cf:") ? e.identifier.slice(3) : null;
        if (key && rec.groups[key] && rec.groups[key].rendered === null) rec.groups[key].rendered = e.renderTime || e.startTime;
      }
    }).observe({type: "element", buffered: true});
    rec.elementTiming = true;
  } catch (e) {}
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries()) rec.paints.push([e.name, e.startTime]);
    }).observe({type: "paint", buffered: true});
  } catch (e) {}
})();
"""

# Net errors that mean the page could not be reached at all (an error, not a verdict).
UNREACHABLE = re.compile(r"net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|NAME_NOT_RESOLVED|ADDRESS_UNREACHABLE|"
                         r"CONNECTION_TIMED_OUT|INTERNET_DISCONNECTED|CERT_[A-Z_]+|SSL_[A-Z_]+|PROXY_[A-Z_]+|"
                         r"TUNNEL_CONNECTION_FAILED|EMPTY_RESPONSE|TIMED_OUT|ABORTED|UNSAFE_PORT|BLOCKED_[A-Z_]+|NETWORK_ACCESS_DENIED)")


# --- the record ------------------------------------------------------------------------------

@dataclass
class PageRecord:
    """One page as Chromium built it: each group's DOM and paint times (seconds on the page's
    clock, after navigation start) and what the navigation got."""
    url: str
    status: int | None = None
    reason: str = ""
    content_type: str | None = None
    load_error: str | None = None          # the navigation failed or its load event never came
    loaded: bool = False                   # the load event fired
    navigation: dict = field(default_factory=dict)   # seconds: request_start, response_start, …
    first_paint_s: float | None = None
    first_contentful_paint_s: float | None = None
    element_timing: bool = False           # paints from the Element Timing API (else rAF only)
    # key ("open", "i<N>", "end") -> {"arrived_s" (DevTools hand-over), "inserted_s" (DOM),
    #                                  "frame_s" (next rAF), "rendered_s" (Element Timing)}
    groups: dict = field(default_factory=dict)
    iframes: list = field(default_factory=list)   # holder: [{"src", "inserted_s", "page": PageRecord dict}]
    screenshot: dict | None = None        # {"at_s", "png_base64", "note"}
    # Chromium's network view of the body: {"pieces": [[t_s, bytes], …], "bytes": n} (DevTools)
    network: dict = field(default_factory=dict)
    text_start: str = ""                  # the first characters of the page's text

    def painted_s(self, key: str) -> float | None:
        g = self.groups.get(key) or {}
        return g.get("rendered_s") if g.get("rendered_s") is not None else g.get("frame_s")


@dataclass
class BrowserRecording:
    """What the ``browser`` scenario hands its check; ``to_dict()`` is what the report reads."""
    scenario: str
    url: str
    error: str | None = None               # could not be judged (no launch, unreachable)
    skip_reason: str | None = None         # not applicable here (no Chromium, not a countdown)
    browser: str = ""                      # "Chromium 156.0…"
    count: int | None = None
    interval_s: float | None = None
    started_at: float | None = None        # time.time() of the navigation
    duration_s: float | None = None
    countdown: PageRecord | None = None
    holder: PageRecord | None = None
    holder_note: str = ""                  # why there is no holder record
    stream: "StreamRecord | None" = None   # sse, ndjson, bytes: what the page's script got
    # the raw recorder's GET of the same target (not kept in the record: it has its own file),
    # for the lag of each event behind it and to tell a hold under a coding from the server's
    reference: object = field(default=None, repr=False, compare=False)
    target: object = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        d = asdict(replace(self, reference=None, target=None, stream=None))
        d.pop("reference"), d.pop("target")
        d["stream"] = asdict(self.stream) if self.stream is not None else None
        if self.stream is not None and self.target is not None:
            # as a client check's recording says it (``ClientRun.to_dict``): the report's client
            # matrix reads when each event reached the page's script and the raw recorder
            run = self.client_run(self.target)
            times = run.event_times()
            d["client"] = {"name": run.client, "api": run.api, "skip": None, "hint": "",
                           "event_times": {k: [None if t is None else round(t, 4) for t in v]
                                           for k, v in times.items()}}
        elif self.countdown is not None and self.reference is not None and self.target is not None and self.count:
            # a page: when each group entered the DOM (s after the request, by its navigation
            # timing) beside when it reached the raw recorder, for the report's client matrix
            start = self.countdown.navigation.get("request_start") or 0.0
            caller = [None] * (self.count + 2)
            for key, g in self.countdown.groups.items():
                k = group_index(key, self.count)
                if k is not None and g.get("inserted_s") is not None:
                    caller[k] = round(g["inserted_s"] - start, 4)
            raw = list(self.target.delivery(self.reference).group_times or []) if self.reference.pieces else []
            d["client"] = {"name": self.browser, "api": "the page, parsed (DOM insertion)", "skip": None, "hint": "",
                           "event_times": {"caller": caller, "raw": [None if t is None else round(t, 4) for t in raw]}}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BrowserRecording":
        d = dict(d)
        d.pop("client", None)   # derived (to_dict): the report's client matrix reads it
        for k in ("countdown", "holder"):
            if d.get(k) is not None:
                d[k] = PageRecord(**d[k])
        if d.get("stream") is not None:
            d["stream"] = StreamRecord(**d["stream"])
        return cls(**d)

    def client_run(self, target):
        """The stream as a client check reads a client's run (``conformance.scenarios.clients.ClientRun``):
        what the page's script got (``primary``), Chromium's network service (``wire``), the raw
        recorder's GET (``reference``)."""
        s = self.stream
        primary, wire = s.timeline(), s.network_timeline()
        if primary.connect_s is None and self.reference is not None:
            # the round trip of the same target, as the raw recorder measured it (Chromium may
            # have connected before the request: DevTools then has no connect time for it)
            primary.connect_s = self.reference.connect_s
            if wire is not None:
                wire.connect_s = self.reference.connect_s
        return ClientRun(self.scenario, self.browser or "Chromium", s.api, primary, wire=wire,
                         reference=self.reference, target=target)

    def screenshots(self) -> dict[str, bytes]:
        """PNG bytes by page ("countdown", "holder")."""
        out = {}
        for name in ("countdown", "holder"):
            page = getattr(self, name)
            if page and page.screenshot and page.screenshot.get("png_base64"):
                out[name] = base64.b64decode(page.screenshot["png_base64"])
        return out


@dataclass
class StreamRecord:
    """An SSE, NDJSON or bytes stream as a page's script read it: ``EventSource`` for SSE, a
    ``fetch()`` body reader (``response.body.getReader()``) otherwise. Times are seconds after
    the request was sent (DevTools' ``sendEnd``, as the raw recorder counts from its request's
    last byte), each taken with ``performance.now()`` when the script got the event or chunk, and
    put on DevTools' clock with Chromium's own wall-to-monotonic mapping (``clock`` says how)."""
    url: str
    profile: str                       # how it was read: sse, ndjson or bytes
    api: str                           # what the page's script called
    status: int | None = None
    reason: str = ""
    request_headers: list = field(default_factory=list)    # as Chromium sent them (DevTools), redacted
    response_headers: list = field(default_factory=list)   # as they came (DevTools)
    connect_s: float | None = None     # the TCP handshake (DevTools timing)
    head_s: float | None = None        # the response head reached Chromium
    clock: str = ""
    # what the page's script got: sse [[t, type, data, lastEventId]]; else [[t, bytes, text (latin-1)]]
    events: list = field(default_factory=list)
    events_dropped: int = 0
    body_bytes: int = 0                # decoded bytes the reader got (sse: data characters)
    end: str | None = None             # complete, closed, watched, timeout, deadline, error
    end_s: float | None = None
    error: str | None = None           # what the page's script saw go wrong
    net_error: str | None = None       # DevTools' loadingFailed
    # Chromium's network service (DevTools): sse [[t, type, data]] per message it parsed;
    # else [[t, decoded bytes, encoded bytes]] per piece it handed on
    network: list = field(default_factory=list)
    listened: list = field(default_factory=list)   # sse: the event types the page listened for
    unheard: int = 0                   # sse: messages DevTools saw that no listener of the page heard

    def _recording(self, scenario: str, headers: list) -> Recording:
        framing = "chunked" if any(k.lower() == "transfer-encoding" for k, _ in headers) else \
            "content-length" if any(k.lower() == "content-length" for k, _ in headers) else "close"
        return Recording(scenario, self.url, request_headers=[list(h) for h in self.request_headers],
                         connect_s=self.connect_s, head_t=self.head_s, http_version="1.1", status=self.status,
                         reason=self.reason, headers=[list(h) for h in headers], framing=framing,
                         parser="chromium", end=self.end, end_t=self.end_s)

    @property
    def event_source(self) -> bool:
        """Read with ``EventSource`` (its events), not a ``fetch()`` body reader (its chunks: an
        SSE stream asked with another method than GET, as chat UIs read it)."""
        return self.profile == "sse" and not self.api.startswith("fetch(")

    def timeline(self) -> Recording:
        """What the page's script got, as a ``Recording`` whose pieces are its events or chunks
        (an SSE event written back as its data lines and the blank line that dispatched it), so the
        suite's delivery judges read it as they read the wire."""
        rec = self._recording("browser", self.response_headers)
        if self.error:
            rec.strict_error = self.error + (f" ({self.net_error})" if self.net_error and self.net_error not in self.error
                                             else "")
        body = bytearray()
        if self.event_source:
            rows = [(t, _sse_block(kind, data)) for t, kind, data, *_ in self.events]
            rows = [(t, len(block), block) for t, block in rows]
        else:   # chunks: their sizes; their bytes as far as the page kept them
            rows = [(t, n, text.encode("latin-1")) for t, n, text in self.events]
        size = 0
        for t, n, data in rows:
            if len(rec.pieces) < PIECES_KEEP:
                rec.pieces.add(t, size, n)
            size += n
            if len(body) < BODY_KEEP:
                body += data[:BODY_KEEP - len(body)]
        rec.body_bytes = size
        rec.body_kept = bytes(body).decode("latin-1")
        return rec

    def network_timeline(self) -> Recording | None:
        """What Chromium's network service handed on, decoded (DevTools), as a ``Recording``; its
        Content-Encoding is left out (the pieces are decoded). None when DevTools saw nothing."""
        if not self.network:
            return None
        headers = [h for h in self.response_headers if h[0].lower() != "content-encoding"]
        rec = self._recording("browser-network", headers)
        body = bytearray()
        if self.event_source:
            size = 0
            for t, kind, data in self._heard_network():
                block = _sse_block(kind, data)
                rec.pieces.add(t, size, len(block))
                size += len(block)
                body += block
            rec.body_bytes = size
        else:
            script = b"".join(text.encode("latin-1") for _, _, text in self.events)
            size = 0
            for t, n, _encoded in self.network:
                if n:
                    rec.pieces.add(t, size, n)
                    size += n
            rec.body_bytes = size
            body = bytearray(script[:size])
        rec.body_kept = bytes(body[:BODY_KEEP]).decode("latin-1")
        return rec

    def _heard_network(self) -> list:
        """DevTools' messages that reached the page's script, in order (matched by type and data):
        a message of a type the page did not listen for yet has no script time to compare with."""
        if not self.unheard:
            return self.network
        out, k = [], 0
        for row in self.network:
            if k < len(self.events) and (row[1], row[2]) == (self.events[k][1], self.events[k][2]):
                out.append(row)
                k += 1
        return out

    def header(self, headers: list, name: str) -> str | None:
        vals = [v for k, v in headers if k.lower() == name]
        return ", ".join(vals) if vals else None


def _sse_block(kind: str, data: str) -> bytes:
    """An event as the page's script got it, written back as an event stream."""
    head = b"" if kind == "message" else b"event: " + kind.encode("utf-8", "replace") + b"\n"
    return head + b"".join(b"data: " + line.encode("utf-8", "replace") + b"\n" for line in data.split("\n")) + b"\n"


# --- availability ----------------------------------------------------------------------------

def chromium_path() -> str | None:
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def unavailable() -> str | None:
    """Why the browser check cannot run here (None: it can)."""
    if importlib.util.find_spec("playwright") is None:
        return f"the playwright package is not installed: {INSTALL_HINT}"
    if chromium_path() is None:
        where = f"{CHROMIUM_ENV}={os.environ[CHROMIUM_ENV]} is not executable" if os.environ.get(CHROMIUM_ENV) \
            else "no chromium on the PATH nor /usr/bin/chromium"
        return f"Chromium is not installed ({where}): {INSTALL_HINT}"
    return None


# --- the scenario ----------------------------------------------------------------------------

def holder_url(ctx: Context) -> str | None:
    """The seed's holder page, on built-in targets only (a remote host's ``/`` is not ours to load)."""
    if ctx.server is None:
        return None
    parts = urlsplit(ctx.url)
    return urlunsplit((parts.scheme, parts.netloc, HOLDER_PATH, "", ""))


def run(ctx: Context) -> BrowserRecording:
    """The scenario's run function: one session in the process's Chromium, in a fresh context.
    A countdown loads as a page; SSE, NDJSON and bytes are read by a page's script."""
    target = ctx.target
    rec = BrowserRecording(SCENARIO, ctx.url or "", count=target.countdown_length, interval_s=target.interval)
    rec.target = target
    if target.profile == "countdown" and target.countdown_length is None and getattr(target, "method", "GET") == "GET":
        rec.skip_reason = "the browser check loads a countdown page (GET /N); this countdown's length is not known"
        return rec
    why = unavailable()
    if why:
        rec.skip_reason = why
        return rec
    if target.profile == "countdown" and getattr(target, "method", "GET") == "GET":
        session = lambda browser: _session(browser, ctx, rec)   # noqa: E731
        # the whole session's bound: both pages' budgets, the browser's start and a margin
        limit = 2 * ctx.deadline + 120
    else:
        get = ctx.recorded("get") if ctx.recorded else None
        rec.reference = get if isinstance(get, Recording) and not get.error else None
        session = lambda browser: _stream_session(browser, ctx, rec)   # noqa: E731
        limit = _stream_budget(ctx) + 90
    # A Chromium that cannot be started or driven is this machine's problem, not the target's: the
    # check is skipped with the reason (an error would say the target could not be reached).
    try:
        BROWSER.run(session, limit)
    except BrowserStartError as e:
        rec.skip_reason = str(e)
    except Exception as e:  # noqa: BLE001 - a browser that cannot be driven is said, not raised
        if rec.error is None:
            rec.skip_reason = f"Chromium could not be driven: {type(e).__name__}: {_first_line(e)}"
    return rec


def connections(ctx: Context) -> int:
    """The most connections a session holds on the target: Chromium opens at most 6 HTTP/1.1
    connections per host, and the countdown page beside the holder page and its four iframes
    use them all (built-in targets); otherwise one page or one stream (the blank page of a
    stream's origin is fulfilled by Playwright; a page's favicon reuses its idle connection)."""
    return 6 if holder_url(ctx) is not None else 1


register(Scenario(SCENARIO, "headless Chromium: the countdown page (and the holder page); SSE through "
                  "EventSource, NDJSON and bytes through a fetch() body reader", run, connections=connections))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:400] if text else ""


class BrowserStartError(RuntimeError):
    pass


class Browser:
    """The process's Chromium: one Playwright driver and browser on a daemon thread with its own
    event loop; ``run`` hands it a session (each in its own browser context, so sessions of
    different targets run side by side) and waits for its result."""

    def __init__(self):
        self._active = 0                       # sessions running now (on the loop's thread)
        self._state = threading.Lock()         # guards the thread and loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pw = None
        self._browser = None
        self._idle: asyncio.TimerHandle | None = None
        self._lock: asyncio.Lock | None = None  # created on the browser's loop
        self._generation = 0                    # sessions run so far
        self._aborted = False                   # abort() ran: the run was interrupted

    def run(self, session, timeout: float):
        """Run ``await session(browser)`` on the browser's loop; at most ``timeout`` seconds."""
        loop = self._start_loop()
        fut = asyncio.run_coroutine_threadsafe(self._run(session), loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            self._close_soon(wait=10)
            raise TimeoutError(f"the browser session took more than {timeout:.0f} s; Chromium was closed") from None

    def close(self, wait: float = 15) -> None:
        """Close Chromium and Playwright's driver (waits up to ``wait`` seconds)."""
        self._close_soon(min(wait, ABORT_CLOSE_WAIT) if self._aborted else wait)

    def reset_abort(self) -> None:
        """Sessions may start again (the suite's own tests, after one that interrupted a run)."""
        self._aborted = False

    def abort(self) -> None:
        """The run was interrupted: close Chromium now, without waiting (a session in progress
        then ends with an error; the run keeps what it has). Closing at exit waits briefly."""
        self._aborted = True
        with self._state:
            loop = self._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_now(), loop)

    # -- on the browser's own thread -----------------------------------------------------------
    async def _run(self, session):
        async with self._busy():   # starting and closing Chromium exclude each other
            self._generation += 1
            self._active += 1
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            try:
                if self._aborted:   # no Chromium is started after an interrupt
                    raise BrowserStartError("the run was interrupted")
                browser = await self._ensure_browser()
            except BaseException:
                self._session_done()
                raise
        try:
            return await session(browser)
        finally:
            self._session_done()

    def _session_done(self) -> None:
        self._active -= 1
        if self._active == 0:
            generation = self._generation
            self._idle = asyncio.get_running_loop().call_later(
                IDLE_CLOSE_S, lambda: asyncio.ensure_future(self._idle_close(generation)))

    def _busy(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _idle_close(self, generation: int):
        async with self._busy():
            # no session since this timer was set, and none running: an idle close never lands
            # mid-session
            if generation == self._generation and self._active == 0:
                await self._shutdown()

    async def _ensure_browser(self):
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        from playwright.async_api import async_playwright
        if self._pw is None:
            self._pw = await async_playwright().start()
        try:
            self._browser = await self._pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                                           args=list(CHROMIUM_ARGS), timeout=60_000)
        except Exception as e:  # noqa: BLE001
            raise BrowserStartError(f"Chromium did not start ({chromium_path()}): {_first_line(e)}") from None
        return self._browser

    async def _close_now(self):
        async with self._busy():
            await self._shutdown()

    async def _shutdown(self):
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        browser, pw, self._browser, self._pw = self._browser, self._pw, None, None
        try:
            if browser is not None:
                await browser.close()
        except Exception:  # noqa: BLE001 - a browser already gone is closed
            pass
        try:
            if pw is not None:
                await pw.stop()
        except Exception:  # noqa: BLE001
            pass

    # -- from any thread -----------------------------------------------------------------------
    def _start_loop(self) -> asyncio.AbstractEventLoop:
        with self._state:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="conformance-chromium", daemon=True).start()
                self._loop = loop
            return self._loop

    def _close_soon(self, wait: float) -> None:
        with self._state:
            loop = self._loop
        if loop is None or not loop.is_running():
            return
        fut = asyncio.run_coroutine_threadsafe(self._close_now(), loop)
        try:
            fut.result(wait)
        except Exception:  # noqa: BLE001 - at exit, a browser that will not close is left to the driver
            pass


BROWSER = Browser()
atexit.register(BROWSER.close)


async def _session(browser, ctx: Context, rec: BrowserRecording) -> None:
    """One target's session: the countdown page and, beside it, the holder page, in a fresh context."""
    target = ctx.target
    span = target.expected_span()
    # The page must finish within the producer's schedule plus the idle timeout (one stalled read).
    budget = min(ctx.deadline, span + ctx.timeout + 5)
    rec.browser = f"Chromium {browser.version}"

    async def fresh_context():
        context = await browser.new_context(
            viewport=VIEWPORT, ignore_https_errors=target.insecure, service_workers="block",
            extra_http_headers={k: v for k, v in target.headers} or None)
        await context.add_init_script(OBSERVER_JS)
        return context

    context = await fresh_context()
    try:
        started = time.monotonic()
        rec.started_at = time.time()
        holder = holder_url(ctx)
        # The holder page beside the countdown page, as a user with both open: six connections
        # between them, Chromium's limit per host (``connections``). The countdown page's
        # request is sent first; the holder's findings are a note, never the verdict.
        countdown = asyncio.ensure_future(_load(context, ctx.url, budget, span / 2))
        held = None
        if holder is None:
            rec.holder_note = "the holder page is loaded on built-in targets only"
        else:
            interval = target.interval
            held = asyncio.ensure_future(_load(context, holder, HOLDER_SPAN_INTERVALS * interval + ctx.timeout + 5,
                                               10 * interval, frames=True))
        rec.countdown = await countdown
        err = rec.countdown.load_error
        if err and UNREACHABLE.search(err) and rec.countdown.status is None:
            rec.error = f"Chromium could not load {ctx.url}: {err}"
        if held is not None:
            rec.holder = await held
        rec.duration_s = round(time.monotonic() - started, 3)
    finally:
        await context.close()


async def _load(context, url: str, budget: float, shot_at: float, frames: bool = False) -> PageRecord:
    """Load one page; screenshot it ``shot_at`` seconds in; collect what the observer saw."""
    page = await context.new_page()
    out = PageRecord(url)
    responses: dict[str, tuple[int, str, str | None]] = {}

    def on_response(r):
        if r.request.resource_type == "document":
            responses.setdefault(r.url, (r.status, r.status_text, r.headers.get("content-type")))
    page.on("response", on_response)
    cdp = await context.new_cdp_session(page)
    net = _Network(cdp)
    await cdp.send("Network.enable")
    try:
        t0 = time.monotonic()
        nav = asyncio.ensure_future(page.goto(url, wait_until="load", timeout=budget * 1000))
        await asyncio.wait({nav}, timeout=shot_at)
        if not nav.done():
            at = time.monotonic() - t0
            png = await _screenshot(cdp)
            took = time.monotonic() - t0 - at
            out.screenshot = {"at_s": round(at, 3), "png_base64": base64.b64encode(png).decode() if png else None,
                              "note": f"taken {at:.2f} s after the navigation began (half-way through the producer's "
                                      f"schedule) in {took * 1000:.0f} ms" + ("" if png else "; the capture failed")}
        try:
            resp = await nav
            out.loaded = True
            if resp is not None:
                out.status, out.reason = resp.status, resp.status_text
                out.content_type = resp.headers.get("content-type")
        except Exception as e:  # noqa: BLE001 - a timeout or a net error is part of the record
            out.load_error = _first_line(e)
        if out.status is None and url in responses:
            out.status, out.reason, out.content_type = responses[url]
        if out.screenshot is None:
            png = await _screenshot(cdp)
            out.screenshot = {"at_s": round(time.monotonic() - t0, 3),
                              "png_base64": base64.b64encode(png).decode() if png else None,
                              "note": "the page had finished loading before half-way; taken after its load event"}
        await _settle(page)
        top = await _collect(page.main_frame)
        if top is None:
            return out
        _fill(out, top, top["origin"], await net.document(url), countdown_count(urlsplit(url).path))
        if frames:
            # each iframe, in the order it entered the holder's DOM, with its own page's record
            children = {sub.url: sub for sub in page.main_frame.child_frames}
            for seen in top.get("iframes") or []:
                src = urljoin(page.url or url, seen["src"])
                child = PageRecord(src)
                sub = children.pop(src, None)
                if src in responses:
                    child.status, child.reason, child.content_type = responses[src]
                data = await _collect(sub) if sub is not None else None
                if data is not None:
                    _fill(child, data, top["origin"], await net.document(src), countdown_count(seen["src"]))
                out.iframes.append({"src": seen["src"], "inserted_s": _s(seen["inserted"]), "page": asdict(child)})
    finally:
        await page.close()
    return out


# --- streams: SSE through EventSource, NDJSON and bytes through a fetch() body reader -----------

# A page of the target's own origin that the target never serves: Playwright fulfils it, so the
# page's script reads the stream same-origin (no CORS), as the target's own pages would.
BLANK_PATH = "/__conformance_blank__"
BLANK_HTML = ('<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
              '<title>conformance</title></head><body><p>reading the stream</p></body></html>')
SSE_TYPES_MAX = 50
EVENT_FIELD = re.compile(rb"^event:[ ]?([^\r\n]*)\r?$", re.M)
SSE_MEDIA = "text/event-stream"

# The page's script. It reads the stream, takes performance.now() as it gets each event (SSE:
# every "message" event and every named type it listens for) or chunk, and stops at the watch
# window, after `idleMs` without anything, or when told (window.__cf_stop). Kind "auto" (no
# profile known): fetch, and if the response is an event stream, EventSource instead.
STREAM_JS = r"""
async (o) => {
  const rec = {origin: performance.timeOrigin, called: null, kind: o.kind, events: [], dropped: 0, bytes: 0,
               kept: 0, end: null, endAt: null, error: null, head: null, opened: null, listened: [], reopened: false};
  let finish;
  const done = new Promise(r => { finish = r; });
  let cleanup = () => {};
  let idle = null;
  const stop = (how) => {
    if (rec.end) return rec;
    rec.end = how; rec.endAt = performance.now();
    clearTimeout(idle);
    try { cleanup(); } catch (e) {}
    finish(rec);
    return rec;
  };
  const touch = () => { clearTimeout(idle); if (o.idleMs) idle = setTimeout(() => stop("timeout"), o.idleMs); };
  window.__cf_stop = stop;
  const latin1 = (bytes) => {
    let out = "";
    for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return out;
  };
  const eventSource = () => {
    rec.kind = "sse";
    const es = new EventSource(o.url);
    cleanup = () => es.close();
    const heard = new Set();
    const on = (e) => {
      touch();
      if (rec.events.length >= o.maxEvents) { rec.dropped++; return; }
      let data = e.data;
      if (rec.kept >= o.keep) data = ""; else rec.kept += data.length;
      rec.bytes += e.data.length;
      rec.events.push([performance.now(), e.type, data, e.lastEventId]);
    };
    window.__cf_listen = (t) => { if (heard.has(t)) return; heard.add(t); rec.listened.push(t); es.addEventListener(t, on); };
    window.__cf_listen("message");
    for (const t of o.types) window.__cf_listen(t);
    es.onopen = () => { rec.opened = performance.now(); touch(); };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        rec.error = "EventSource failed the connection" + (rec.opened === null ? " before it opened" : "");
        stop("error");
      } else {
        stop(rec.opened === null ? "error" : "closed");   // the stream ended: no reconnection
        if (rec.opened === null) rec.error = "EventSource lost the connection before it opened";
      }
    };
  };
  const reader = async () => {
    const ctl = new AbortController();
    cleanup = () => ctl.abort();
    try {
      const init = {signal: ctl.signal, cache: "no-store", redirect: "manual"};
      if (o.method && o.method !== "GET") {   // a chat UI's request: its method and body (base64)
        init.method = o.method;
        if (o.body != null) init.body = Uint8Array.from(atob(o.body), (c) => c.charCodeAt(0));
      }
      const r = await fetch(o.url, init);
      rec.head = performance.now();
      rec.status = r.status;
      rec.headers = [...r.headers];
      const ctype = (r.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
      if (o.preview || (rec.kind === "auto" && ctype === o.sseMedia)) {
        // an event stream: its first event says which named types to listen for (the GET's body
        // would have said), then EventSource reads it from the start
        const rd = r.body.getReader(), dec = new TextDecoder();
        let text = "";
        for (;;) {
          const {done, value} = await rd.read();
          if (done) break;
          text += dec.decode(value, {stream: true});
          if (/(^|\n)data[^\n]*\r?\n\r?\n/.test(text) || text.length > 65536) break;
        }
        for (const m of text.matchAll(/^event: ?([^\r\n]*)\r?$/gm)) if (m[1] && !o.types.includes(m[1])) o.types.push(m[1]);
        rec.reopened = true;
        ctl.abort();
        if (!rec.end) eventSource();
        return;
      }
      rec.kind = "fetch";
      const rd = r.body.getReader();
      cleanup = () => { ctl.abort(); };
      for (;;) {
        const {done, value} = await rd.read();
        if (done) { stop("complete"); return; }
        touch();
        const t = performance.now();
        rec.bytes += value.length;
        if (rec.events.length >= o.maxEvents) { rec.dropped++; continue; }
        let text = "";
        if (rec.kept < o.keep) { text = latin1(value.subarray(0, o.keep - rec.kept)); rec.kept += text.length; }
        rec.events.push([t, value.length, text]);
      }
    } catch (e) {
      if (!rec.end) { rec.error = `${e.name}: ${e.message}`; stop("error"); }
    }
  };
  setTimeout(() => stop("watched"), o.watchMs);
  rec.called = performance.now();
  touch();
  if (o.kind === "sse" && !o.preview) eventSource(); else reader();
  return await done;
}
"""


def _stream_watch(ctx: Context) -> float:
    """How long the page's script reads a stream that has not ended (s): the target's watch."""
    return ctx.watch if ctx.watch else ctx.target.watch_s()


def _stream_budget(ctx: Context) -> float:
    """The bound on the script's reading (s): the watch window and one idle timeout more."""
    return min(_stream_watch(ctx) + ctx.timeout, ctx.deadline) + 10


def sse_types(body: bytes) -> list[str]:
    """The named event types (``event:`` fields) in an event stream, in order of first use."""
    out: list[str] = []
    for m in EVENT_FIELD.finditer(body or b""):
        name = m.group(1).decode("utf-8", "replace")
        if name and name != "message" and name not in out:
            out.append(name)
            if len(out) >= SSE_TYPES_MAX:
                break
    return out


class _StreamNetwork:
    """Chromium's network view of the page's stream request (DevTools): the headers as sent and
    received, the request's timing, each piece the network service handed on (and for SSE, each
    message it parsed), and how the request ended. The blank page makes no other requests of
    type Fetch or EventSource."""

    def __init__(self, cdp, on_type=None):
        self.reqs: dict[str, dict] = {}
        self.extra: dict[str, dict] = {}      # requestId -> {"request": headers, "response": (status, headers)}
        self.on_type = on_type
        self.types: set[str] = set()
        for name in ("requestWillBeSent", "requestWillBeSentExtraInfo", "responseReceived",
                     "responseReceivedExtraInfo", "dataReceived", "eventSourceMessageReceived",
                     "loadingFinished", "loadingFailed"):
            cdp.on(f"Network.{name}", getattr(self, "_" + name))

    def _req(self, p) -> dict | None:
        return self.reqs.get(p.get("requestId"))

    def _requestWillBeSent(self, p):
        if p.get("type") in ("Fetch", "EventSource"):
            self.reqs[p["requestId"]] = {"type": p["type"], "ts": p["timestamp"], "wall": p.get("wallTime"),
                                         "headers": p["request"].get("headers") or {}, "response": None,
                                         "response_ts": None, "data": [], "messages": [], "finished": None,
                                         "failed": None, "over": asyncio.Event()}

    def _requestWillBeSentExtraInfo(self, p):
        self.extra.setdefault(p["requestId"], {})["request"] = p.get("headers") or {}

    def _responseReceivedExtraInfo(self, p):
        self.extra.setdefault(p["requestId"], {})["response"] = (p.get("statusCode"), p.get("headers") or {})

    def _responseReceived(self, p):
        r = self._req(p)
        if r is not None:
            r["response"], r["response_ts"] = p["response"], p["timestamp"]

    def _dataReceived(self, p):
        r = self._req(p)
        if r is not None and len(r["data"]) < PIECES_KEEP:
            r["data"].append((p["timestamp"], p.get("dataLength") or 0, p.get("encodedDataLength") or 0))

    def _eventSourceMessageReceived(self, p):
        r = self._req(p)
        if r is None:
            return
        name = p.get("eventName") or "message"
        if len(r["messages"]) < PIECES_KEEP:
            r["messages"].append((p["timestamp"], name, p.get("data") or ""))
        if name not in self.types:
            self.types.add(name)
            if self.on_type is not None:
                self.on_type(name)

    def _loadingFinished(self, p):
        r = self._req(p)
        if r is not None:
            r["finished"] = p["timestamp"]
            r["over"].set()

    def _loadingFailed(self, p):
        r = self._req(p)
        if r is not None:
            r["failed"] = (p["timestamp"], p.get("errorText") or "", bool(p.get("canceled")))
            r["over"].set()

    async def settled(self, kind: str, timeout: float = 2.0) -> None:
        """Wait until DevTools has said how the request ended (loading finished or failed): the
        page's script may hear the end before DevTools' event reaches us."""
        found = self.last(kind)
        if found is None:
            return
        try:
            await asyncio.wait_for(found[1]["over"].wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def last(self, kind: str) -> tuple[str, dict] | None:
        """The last request of this type ("Fetch", "EventSource"), with its requestId."""
        return next(((rid, r) for rid, r in reversed(self.reqs.items()) if r["type"] == kind), None)


def _header_pairs(headers: dict) -> list[list[str]]:
    """DevTools' header object (repeated fields joined by newlines) as ordered pairs."""
    return [[k, line] for k, v in headers.items() for line in str(v).split("\n")]


async def _stream_session(browser, ctx: Context, rec: BrowserRecording) -> None:
    """Read an SSE, NDJSON or bytes stream in a page of the target's origin, in a fresh context."""
    target = ctx.target
    url = ctx.url
    parts = urlsplit(url)
    blank = urlunsplit((parts.scheme, parts.netloc, BLANK_PATH, "", ""))
    rec.browser = f"Chromium {browser.version}"
    context = await browser.new_context(
        viewport=VIEWPORT, ignore_https_errors=target.insecure, service_workers="block",
        extra_http_headers={k: v for k, v in target.headers} or None)
    try:
        async def fulfil(route):
            await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=BLANK_HTML)
        await context.route(blank, fulfil)
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)

        def listen(name: str):   # a type DevTools saw first: the page listens from now on
            asyncio.ensure_future(page.evaluate("t => window.__cf_listen && window.__cf_listen(t)", name))
        net = _StreamNetwork(cdp, listen)
        await cdp.send("Network.enable")
        await page.goto(blank, timeout=30_000)
        profile = target.profile
        method = getattr(target, "method", "GET")
        # EventSource can only GET: any other request is read with a fetch() body reader, as chat UIs do
        kind = "fetch" if method != "GET" else "sse" if profile == "sse" else "auto" if profile is None else "fetch"
        types = sse_types(rec.reference.body) if rec.reference is not None else []
        net.types.update(types + ["message"])
        watch = _stream_watch(ctx)
        # SSE without the GET's body to say its event types: a first fetch() reads the first event
        opts = {"url": url, "kind": kind, "types": types, "preview": kind == "sse" and rec.reference is None, "watchMs": watch * 1000, "idleMs": ctx.timeout * 1000,
                "keep": BODY_KEEP, "maxEvents": PIECES_KEEP, "sseMedia": SSE_MEDIA, "method": method,
                "body": None if target.body is None else base64.b64encode(target.body).decode("ascii")}
        started = time.monotonic()
        rec.started_at = time.time()
        task = asyncio.ensure_future(page.evaluate(STREAM_JS, opts))
        done, _ = await asyncio.wait({task}, timeout=_stream_budget(ctx))
        if done:
            data = task.result()
        else:   # the page did not stop by itself: stop it and take what it has
            data = await asyncio.wait_for(page.evaluate("() => window.__cf_stop('deadline')"), 10)
            task.cancel()
        await net.settled("EventSource" if data.get("kind") == "sse" and net.last("EventSource") else "Fetch")
        rec.stream = _stream_record(data, net, url, profile, ctx.secret_headers)
        rec.duration_s = round(time.monotonic() - started, 3)
        s = rec.stream
        if s.status is None and s.end == "error" and s.net_error and UNREACHABLE.search(s.net_error):
            rec.error = f"Chromium could not load {url}: {s.net_error}"
    finally:
        await context.close()


def _stream_record(data: dict, net: _StreamNetwork, url: str, profile: str | None, secret=()) -> StreamRecord:
    """The page's findings and DevTools' on one clock: seconds after the request was sent."""
    sse = data.get("kind") == "sse"
    api = "new EventSource(url): message and named events" if sse else "fetch(url).body.getReader().read()"
    if profile is None:
        profile = "sse" if sse else None
    # the request the script read (a failed preview fetch() is the only one when EventSource never started)
    found = net.last("EventSource" if sse else "Fetch") or net.last("Fetch")
    rid, req = found if found else (None, None)
    resp = (req or {}).get("response") or {}
    timing = resp.get("timing") or {}
    extra = net.extra.get(rid, {}) if rid else {}
    if profile is None:   # no profile given nor read from a GET: the response's Content-Type says
        ctype = next((v for k, v in _header_pairs(((extra.get("response") or (None, None))[1]
                                                  or resp.get("headers") or {})) if k.lower() == "content-type"), "")
        profile = MEDIA_PROFILES.get(ctype.split(";")[0].strip().lower(), "bytes")
    out = StreamRecord(url, profile, api)
    called = data.get("called") or 0.0
    page_mono = None
    if req is not None and req.get("wall") is not None:
        # Chromium's own wall-to-monotonic mapping (DevTools' wallTime and timestamp of the same
        # moment) puts performance.now() on DevTools' clock; checked against the request's start
        shift = req["wall"] - req["ts"]
        mapped = (data["origin"] + called) / 1000 - shift
        if req["ts"] - 1.0 <= mapped <= req["ts"] + 0.05:
            page_mono = lambda ms: (data["origin"] + ms) / 1000 - shift   # noqa: E731
    send = None
    if timing.get("requestTime") is not None:
        send = timing["requestTime"] + max(timing.get("sendEnd", 0), 0) / 1000
        if timing.get("connectStart", -1) >= 0 and timing.get("connectEnd", -1) >= 0:
            out.connect_s = round((timing["connectEnd"] - timing["connectStart"]) / 1000, 6)
    elif req is not None:
        send = req["ts"]
    if page_mono is not None and send is not None:
        rel = lambda ms: round(page_mono(ms) - send, 5)   # noqa: E731
        out.clock = ("seconds after Chromium sent the request (DevTools sendEnd); the script's "
                     "performance.now() put on DevTools' clock by Chromium's wall-to-monotonic mapping")
    else:
        rel = lambda ms: round((ms - called) / 1000, 5)   # noqa: E731
        out.clock = "seconds after the page's script called " + ("EventSource" if sse else "fetch()")
    dev = (lambda ts: round(ts - send, 5)) if send is not None else None
    if req is not None:
        sent = extra.get("request") or req["headers"]
        out.request_headers = redact(_header_pairs(sent), secret)
        status, raw_headers = extra.get("response") or (None, None)
        out.status = status if status is not None else resp.get("status")
        out.reason = resp.get("statusText") or ""
        out.response_headers = _header_pairs(raw_headers if raw_headers else (resp.get("headers") or {}))
        if req.get("response_ts") is not None and dev is not None:
            out.head_s = dev(req["response_ts"])
        if req.get("failed") and not req["failed"][2]:
            out.net_error = req["failed"][1]
        if dev is not None:
            out.network = ([[dev(t), kind, d] for t, kind, d in req["messages"]] if sse
                           else [[dev(t), n, e] for t, n, e in req["data"]])
    elif data.get("status") is not None:
        out.status = data["status"]
    out.events = [[rel(e[0]), *e[1:]] for e in data.get("events") or []]
    out.events_dropped = data.get("dropped") or 0
    out.body_bytes = data.get("bytes") or 0
    out.end = data.get("end")
    if out.end == "closed" and req is not None and req.get("finished") is not None:
        out.end = "complete"    # the server ended the body (DevTools: loading finished)
    if out.end == "closed" and out.net_error:
        out.end = "error"
    out.end_s = rel(data["endAt"]) if data.get("endAt") is not None else None
    out.error = data.get("error")
    if out.error and out.net_error:
        out.error += f" ({out.net_error})"
    elif out.end == "error" and out.net_error and not out.error:
        out.error = out.net_error
    ctype = (out.header(out.response_headers, "content-type") or "").split(";")[0].strip().lower()
    if sse and out.error and out.status is not None and 200 <= out.status < 300 and ctype != SSE_MEDIA:
        out.error = (f"EventSource refuses a response whose Content-Type is not {SSE_MEDIA} "
                     f"(got {ctype or 'none'}): {out.error}")
    out.listened = list(data.get("listened") or [])
    if sse and req is not None:
        out.unheard = max(0, len(req["messages"]) - len(out.events))
    return out


class _Network:
    """When each piece of a document's body reached Chromium (DevTools' ``Network.dataReceived``,
    on DevTools' monotonic clock), and the body itself, to tell a browser's own hold (a charset
    prescan, MIME sniffing) from bytes that came late."""

    def __init__(self, cdp):
        self.cdp = cdp
        self.docs: dict[str, dict] = {}   # requestId -> {"url", "timing", "chunks": [(ts, bytes)]}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.dataReceived", self._data)

    def _sent(self, p):
        if p.get("type") == "Document":
            self.docs[p["requestId"]] = {"url": p["request"]["url"], "timing": None, "chunks": []}

    def _response(self, p):
        if p.get("requestId") in self.docs:
            self.docs[p["requestId"]]["timing"] = p["response"].get("timing")

    def _data(self, p):
        doc = self.docs.get(p.get("requestId"))
        if doc is not None and len(doc["chunks"]) < CHUNKS_KEEP:
            doc["chunks"].append((p["timestamp"], p.get("dataLength") or 0))

    async def document(self, url: str) -> dict | None:
        """The last document request for ``url``, with its body (bytes) when Chromium still has it."""
        rid = next((r for r, d in reversed(self.docs.items()) if d["url"] == url), None)
        if rid is None or not self.docs[rid]["timing"]:
            return None
        doc = dict(self.docs[rid], body=None)
        try:
            got = await asyncio.wait_for(self.cdp.send("Network.getResponseBody", {"requestId": rid}), 5)
            doc["body"] = base64.b64decode(got["body"]) if got.get("base64Encoded") else got["body"].encode("utf-8")
        except Exception:  # noqa: BLE001 - without the body, pieces are kept but not matched to groups
            pass
        return doc


async def _screenshot(cdp) -> bytes | None:
    """What the page shows now. Chrome DevTools' own capture, not ``page.screenshot()``, which
    waits for a pending navigation to commit: mid-way through a held body, a user sees the page
    that was there before (blank), and so must the screenshot."""
    try:
        shot = await asyncio.wait_for(cdp.send("Page.captureScreenshot", {"format": "png"}), 5)
        return base64.b64decode(shot["data"])
    except Exception:  # noqa: BLE001 - the screenshot is for the report only
        return None


async def _settle(page) -> None:
    """Let the last frame be painted and its paint entries delivered."""
    try:
        await page.wait_for_function(
            "() => { const r = window.__conformance; return r && Object.values(r.groups).every("
            "g => g.frame !== null && (g.rendered !== null || g.shared || !r.elementTiming)); }",
            timeout=SETTLE_S * 1000, polling=50)
    except Exception:  # noqa: BLE001 - whatever has not come by now is recorded as missing
        pass


async def _collect(frame) -> dict | None:
    try:
        return await frame.evaluate(
            "() => { const r = window.__conformance; if (!r) return null;"
            " const nav = performance.getEntriesByType('navigation')[0];"
            " return Object.assign({}, r, {nav: nav ? nav.toJSON() : null,"
            " text: (document.documentElement ? document.documentElement.textContent : '').slice(0, 300)}); }")
    except Exception:  # noqa: BLE001 - a frame that went away has nothing to say
        return None


def _s(ms, shift: float = 0.0) -> float | None:
    return None if ms is None else round((ms + shift) / 1000, 4)


def _fill(out: PageRecord, data: dict, top_origin: float, doc: dict | None = None, count: int | None = None) -> None:
    """Copy the observer's findings (and Chromium's network view of the document) into ``out``,
    on the top page's clock (for the holder's iframes)."""
    shift = data["origin"] - top_origin
    out.element_timing = bool(data.get("elementTiming"))
    out.text_start = re.sub(r"\s+", " ", data.get("text") or "").strip()[:200]
    out.groups = {k: {"inserted_s": _s(g["inserted"], shift), "frame_s": _s(g.get("frame"), shift),
                      "rendered_s": _s(g.get("rendered"), shift), "arrived_s": None}
                  for k, g in data["groups"].items()}
    for name, t in data.get("paints") or []:
        if name == "first-paint":
            out.first_paint_s = _s(t, shift)
        elif name == "first-contentful-paint":
            out.first_contentful_paint_s = _s(t, shift)
    nav = data.get("nav") or {}
    out.navigation = {k: _s(nav[v], shift) for k, v in (
        ("connect_start", "connectStart"), ("connect_end", "connectEnd"), ("request_start", "requestStart"),
        ("response_start", "responseStart"), ("response_end", "responseEnd"),
        ("dom_interactive", "domInteractive"), ("load_event_end", "loadEventEnd")) if nav.get(v)}
    if doc is None or not nav.get("requestStart"):
        return
    # DevTools' clock to the page's: the request was sent at requestTime + sendStart (DevTools)
    # and at requestStart (the page's navigation timing).
    timing = doc["timing"]
    base = (nav["requestStart"] + shift) / 1000 - timing["requestTime"] - timing.get("sendStart", 0) / 1000
    chunks = [(round(ts + base, 4), n) for ts, n in doc["chunks"]]
    out.network = {"pieces": chunks, "bytes": sum(n for _, n in chunks)}
    body = doc.get("body")
    if not body or count is None:
        return
    ends, total = [], 0
    for _, n in chunks:
        total += n
        ends.append(total)
    for k, off in enumerate(countdown_group_offsets(body, count)):
        key = "open" if k == 0 else "end" if k == count + 1 else f"i{count - k + 1}"
        i = bisect.bisect_right(ends, off) if off is not None else len(ends)
        if key in out.groups and i < len(ends):
            out.groups[key]["arrived_s"] = chunks[i][0]


# --- reading a record back: group times as the timing analysis numbers them ----------------

def group_index(key: str, count: int) -> int | None:
    """The countdown's group number of a key, as ``conformance.analysis.timing`` numbers them:
    0 the opening, 1 "Liftoff in <count>" … <count> "Liftoff in 1", <count>+1 the closing."""
    if key == "open":
        return 0
    if key == "end":
        return count + 1
    m = re.fullmatch(r"i(\d+)", key)
    if m and 1 <= int(m.group(1)) <= count:
        return count - int(m.group(1)) + 1
    return None


def timeline(page: PageRecord, count: int, when: str = "inserted") -> list[tuple[float, int]]:
    """(time, group) for each group found, sorted by time. ``when``: "inserted" or "painted"."""
    out = []
    for key, g in page.groups.items():
        k = group_index(key, count)
        t = g.get("inserted_s") if when == "inserted" else page.painted_s(key)
        if k is not None and t is not None:
            out.append((t, k))
    return sorted(out)


def save_screenshots(report_dir: Path) -> list[Path]:
    """Write the PNGs kept in a report dir's browser recordings to ``screenshots/`` beside them
    (``<recording stem>-countdown.png``, ``…-holder.png``); return the files written."""
    report_dir = Path(report_dir)
    written = []
    for path in sorted((report_dir / "recordings").glob("*.json")):
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if not str(d.get("scenario", "")).startswith(SCENARIO):
                continue
            shots = BrowserRecording.from_dict(d).screenshots()
        except (OSError, ValueError, TypeError, KeyError):
            continue
        for name, png in shots.items():
            out = report_dir / "screenshots" / f"{path.stem}-{name}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(png)
            written.append(out)
    return written


@dataclass
class Progress:
    """A page's groups grouped into bursts, judged as ``delivery.progressive`` judges arrivals."""
    times: list[tuple[float, int]]        # (seconds after navigation start, group)
    bursts: list                          # conformance.analysis.timing.Burst, each with its groups
    allowed: int                          # Margins.groups_per_burst()
    expected: int                         # the countdown's separate writes in time (count + 2)

    @property
    def largest(self):
        return max(self.bursts, key=lambda b: len(b.groups)) if self.bursts else None

    @property
    def ok(self) -> bool:
        return bool(self.bursts) and len(self.largest.groups) <= self.allowed and \
            len(self.bursts) >= min(2, self.expected)


def progress(page: PageRecord, count: int, margins, when: str = "inserted") -> Progress:
    """Group a page's DOM (or paint) times into bursts with the delivery analysis's own rule:
    ``timing.split_bursts`` at ``Margins.burst_gap``, no burst carrying more than
    ``Margins.groups_per_burst()`` of the producer's writes."""
    times = timeline(page, count, when)
    bursts = split_bursts([(t, 1) for t, _ in times], margins.burst_gap)
    for t, k in times:
        next(b for b in bursts if b.start <= t <= b.end).groups.append(k)
    return Progress(times, bursts, margins.groups_per_burst(), count + 2)


def page_record(d: dict | PageRecord) -> PageRecord:
    return d if isinstance(d, PageRecord) else PageRecord(**d)


# --- for the report --------------------------------------------------------------------------

SCREENSHOT_CAP = 4 * 2**20   # bytes of PNG a report embeds per screenshot


def _label(key: str) -> str:
    return {"open": "opening (<h2>, <ul>)", "end": "closing (<h1>Lift off</h1>)"}.get(key, f"Liftoff in {key[1:]}")


def _png_data_uri(shot: dict | None) -> str | None:
    """A screenshot as a ``data:image/png;base64,…`` URI, only if it decodes to a PNG (re-encoded,
    so nothing but base64 reaches the page) and is not over SCREENSHOT_CAP."""
    try:
        png = base64.b64decode((shot or {}).get("png_base64") or "", validate=True)
    except (ValueError, TypeError):
        return None
    if not png.startswith(b"\x89PNG\r\n\x1a\n") or len(png) > SCREENSHOT_CAP:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def report_view(d: dict) -> dict:
    """What a report shows of a browser recording (its ``to_dict()``), as plain data: per page,
    each group's times (network hand-over, DOM, paint; seconds after navigation start), the
    screenshot as a data URI, and for the holder each iframe's groups. Strings here come from the
    target (URLs, page text): a report must still escape them."""
    rec = BrowserRecording.from_dict(d)

    def page_view(p: PageRecord | None, name: str) -> dict | None:
        if p is None:
            return None
        count = countdown_count(urlsplit(p.url).path)
        order = sorted(p.groups, key=lambda k: (group_index(k, count) if count is not None else None) or 0)
        return page_shape(
            name=name, url=p.url, status=p.status, content_type=p.content_type, load_error=p.load_error,
            navigation=p.navigation, first_paint_s=p.first_paint_s,
            rows=[{"group": _label(k), "times": [p.groups[k].get("arrived_s"), p.groups[k].get("inserted_s"),
                                                 p.painted_s(k)]} for k in order],
            screenshot={"at_s": (p.screenshot or {}).get("at_s"), "note": (p.screenshot or {}).get("note", ""),
                        "data_uri": _png_data_uri(p.screenshot)},
            iframes=[{"src": f.get("src"), "inserted_s": f.get("inserted_s"),
                      "page": page_view(page_record(f["page"]) if f.get("page") else None, f.get("src") or "")}
                     for f in p.iframes])

    return {"browser": rec.browser, "error": rec.error, "skip_reason": rec.skip_reason,
            "countdown": page_view(rec.countdown, "countdown"), "holder": page_view(rec.holder, "holder"),
            "holder_note": rec.holder_note, "stream": stream_view(rec.stream, (d.get("client") or {}).get("event_times"))}


PAGE_COLUMNS = ["write group", "bytes handed over (s)", "in the DOM (s)", "painted (s)"]


def page_shape(*, name: str, url: str, **fields) -> dict:
    """One page of a browser report view, every key the report template reads always present (the
    template's environment is strict about undefined names): ``rows`` is ``[{"group": str, "times":
    [seconds or None, ...]}]`` with one time per column after the first of ``columns``."""
    unknown = set(fields) - set(_PAGE_DEFAULTS)
    if unknown:
        raise TypeError(f"page_shape: unknown fields {sorted(unknown)}")
    return {"name": name, "url": url, **{k: fields.get(k, v() if callable(v) else v) for k, v in _PAGE_DEFAULTS.items()}}


_PAGE_DEFAULTS = {
    "status": None, "content_type": None, "load_error": None, "navigation": dict, "first_paint_s": None,
    "rows": list, "columns": lambda: list(PAGE_COLUMNS), "note": "",
    "screenshot": lambda: {"at_s": None, "note": "", "data_uri": None}, "iframes": list,
}


STREAM_ROWS = 200   # events a report lists per stream


def stream_view(s: StreamRecord | None, event_times: dict | None = None) -> dict | None:
    """A stream read by a page's script, in the shape of a page view: a row per event (SSE) or
    line (NDJSON), or per chunk (bytes), with when Chromium's network service had it, when the
    page's script got it and when the raw recorder's GET had it (seconds after each request)."""
    if s is None:
        return None
    unit = {"sse": "event", "ndjson": "line"}.get(s.profile)
    raw = [t if isinstance(t, (int, float)) else None for t in ((event_times or {}).get("raw") or [])]
    if unit:
        script = [u.end for u in units_of(s.timeline(), s.profile)]
        wire = s.network_timeline()
        network = [u.end for u in units_of(wire, s.profile)] if wire is not None else []
        kinds = [e[1] for e in s.events] if s.event_source else []
        rows = [{"group": f"{unit} {k + 1}" + (f" ({kinds[k]})" if k < len(kinds) and kinds[k] != "message" else ""),
                 "times": [network[k] if k < len(network) else None, t, raw[k] if k < len(raw) else None]}
                for k, t in enumerate(script[:STREAM_ROWS])]
    else:
        rows = [{"group": f"chunk {k + 1} ({e[1]} bytes)", "times": [None, e[0], None]}
                for k, e in enumerate(s.events[:STREAM_ROWS])]
    ctype = s.header(s.response_headers, "content-type")
    coding = s.header(s.response_headers, "content-encoding") or "none"
    return page_shape(
        name="stream", url=s.url, status=s.status, content_type=ctype, load_error=s.error, rows=rows,
        columns=[unit or "chunk", "Chromium's network (s)", "the page's script (s)", "raw recorder (s)"],
        note=(f"{s.api}; Accept-Encoding sent: {s.header(s.request_headers, 'accept-encoding') or '(none)'}; "
              f"Content-Encoding got: {coding}; ended: {s.end}; {s.clock}"))
