"""What the suite checks: a target's URL and the producer's schedule it is judged against.

Only the URL is required. Without ``--profile`` the profile comes from the response
(``profile_of``); without ``--interval`` the producer's timing is not known and the delivery
checks judge by the schedule-free rule (``conformance.analysis.inferred``); without ``--watch`` a stream
is recorded for ``DEFAULT_WATCH_S`` (or its whole known schedule) and then judged on what arrived.
"""
from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit, urlunsplit

from conformance.analysis.timing import Delivery, analyse
from conformance.analysis.units import countdown_count
from conformance.probe import recognise

PROFILES = ("countdown", "sse", "ndjson", "bytes")
# Content-Type → profile (docs/design.md, "Only the URL is required").
MEDIA_PROFILES = {"text/event-stream": "sse", "application/x-ndjson": "ndjson", "application/jsonl": "ndjson",
                  "application/json-seq": "ndjson", "application/ndjson": "ndjson", "application/jsonlines": "ndjson",
                  "application/x-jsonlines": "ndjson"}
COUNTDOWN_MARK = re.compile(rb"Liftoff in\s*\d+|Prepare for Launch", re.I)
# How long a stream that has not ended is recorded before the suite closes it and judges what
# arrived, when neither --watch nor a known schedule says (docs/guide.md, "Endless streams").
DEFAULT_WATCH_S = 15.0
MAX_STREAMS = 64   # delivery.concurrent: more streams at once is a load test, not a conformance check
COUNTDOWN_INTERVAL_S = 1.0   # the seed's own pace: a countdown's interval when none is given


@dataclass(frozen=True)
class Target:
    """A target's configuration, frozen: what the engine learns while it runs (the URL a
    built-in or an app was started on, where redirects lead, the profile the main GET showed, the
    pace seen on it) makes a variant with ``dataclasses.replace``, held by the engine's
    ``TargetRun``. Each variant has its own delivery analyses (``delivery``)."""
    id: str
    url: str | None                   # None for a built-in target until it is started
    profile: str | None = "countdown"  # None: from the response (``profile_of``)
    interval: float | None = 1.0      # the producer's time between writes, in seconds; None: inferred
    count: int | None = None          # countdown length when the URL does not say
    expect_bursts: int | None = None  # bytes profile: minimum separate arrivals
    headers: list[tuple[str, str]] = field(default_factory=list)
    insecure: bool = False
    builtin: str | None = None        # the built-in target's name, when the suite starts it
    large_url: str | None = None      # what delivery.large-body downloads (built-ins bring their own)
    large_size: int | None = None     # bytes of a built-in target's large body (None: the run's, else 1 GiB)
    concurrent_streams: int = 5       # delivery.concurrent: streams at once
    watch: float | None = None        # --watch: seconds a stream that has not ended is recorded
    pace_s: float | None = None       # the pace seen on the main GET when no interval is given
    method: str = "GET"               # the request every scenario sends (conformance.wire.request)
    body: bytes | None = None         # its content (-d, --json, --curl), sent with Content-Length
    max_requests: int | None = None   # --max-requests: requests to this target at most (None: no cap)
    reference: str | None = None      # --reference: the origin behind the target's proxy or CDN (delivery.chain)
    # the delivery analyses of this variant's recordings (a cache, not configuration: not copied by replace)
    _deliveries: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        # user:password in a URL is sent as Basic credentials, as curl and browsers do, and taken
        # out of the URL so that no id, result, recording or report shows it.
        if self.url and "@" in (urlsplit(self.url).netloc or ""):
            url, auth = split_credentials(self.url)
            if self.id == self.url:
                object.__setattr__(self, "id", url)
            object.__setattr__(self, "url", url)
            if not any(k.lower() == "authorization" for k, _ in self.headers):
                object.__setattr__(self, "headers", list(self.headers) + [("Authorization", auth)])

    @property
    def safe(self) -> bool:
        """Whether the target's request is safe to repeat (RFC 9110 §9.2.1)."""
        from conformance.wire.request import is_safe
        return is_safe(self.method)

    @property
    def countdown_length(self) -> int | None:
        """The countdown's length: ``--count``, else the URL's ``/N``; only for the countdown
        (an ``/N`` at the end of an SSE or NDJSON URL says nothing about its events)."""
        if self.profile not in (None, "countdown"):
            return None
        if self.count is not None:
            return self.count
        return countdown_count(urlsplit(self.url).path) if self.url else None

    @property
    def schedule_known(self) -> bool:
        return self.interval is not None

    def pace(self) -> float:
        """A producer interval in seconds for the scenarios that need a number (the disconnect
        watch, the browser's budget): the given one, else the pace seen on the main GET, else 1 s."""
        return self.interval or self.pace_s or 1.0

    def expected_span(self) -> float:
        """How long the producer takes from its first write to its last (s); 0 when unknown."""
        if self.interval is None:
            return 0.0
        if self.profile == "countdown" and self.countdown_length is not None:
            return (self.countdown_length + 1) * self.interval
        return max(0, (self.expect_bursts or 1) - 1) * self.interval

    def watch_s(self) -> float:
        """How long a stream that has not ended is recorded (s): ``--watch``, else the known
        schedule with room to spare, else ``DEFAULT_WATCH_S``."""
        if self.watch is not None:
            return self.watch
        return max(DEFAULT_WATCH_S, 1.5 * self.expected_span() + 5)

    def profile_for(self, rec) -> str:
        """The profile a recording is judged by: the given one, else ``profile_of(rec)``."""
        return self.profile or profile_of(rec)

    def resolved(self, rec) -> Target:
        """The variant with the profile the main GET shows, when none was given, so every
        scenario after it (the browser's, the clients') reads the body the same way; else self."""
        if self.profile is None and rec is not None and getattr(rec, "status", None) is not None:
            return replace(self, profile=profile_of(rec))
        return self

    def delivery(self, rec) -> Delivery:
        """The delivery analysis of a recording, computed once and shared by the checks."""
        key = id(rec)
        if key not in self._deliveries:
            profile = self.profile_for(rec)
            count = self.countdown_length if profile == "countdown" else None
            interval, expect, note = self.interval, self.expect_bursts, None
            probe = recognise(getattr(rec, "body", b"") or b"") if interval is None else None
            if probe is not None:   # the probe says its own schedule: judged exactly
                profile, interval = probe.profile, probe.interval
                count = probe.count if profile == "countdown" else None
                expect = expect or (None if profile == "countdown" else probe.expected)
                note = (f"the body is the suite's probe: its own schedule ({probe.expected} writes "
                        f"{probe.interval:g} s apart) is the producer's")
            d = analyse(rec, profile, interval, count, expect)
            if note:
                d.notes.insert(0, note)
            self._deliveries[key] = (rec, d)
        return self._deliveries[key][1]


def profile_of(rec) -> str:
    """The profile a response asks for (docs/design.md): its Content-Type (``text/event-stream``:
    sse; ``application/x-ndjson``, ``application/jsonl``, ``application/json-seq``: ndjson), the
    countdown's own content (its items or heading, in an HTML body), otherwise bytes."""
    ctype = next(iter(rec.header_values("content-type")), "") if hasattr(rec, "header_values") else ""
    media = ctype.split(";")[0].strip().lower()
    if media in MEDIA_PROFILES:
        return MEDIA_PROFILES[media]
    if media in ("text/html", "") and COUNTDOWN_MARK.search(getattr(rec, "body", b"")[:64 * 1024] or b""):
        return "countdown"
    return "bytes"


def split_credentials(url: str) -> tuple[str, str]:
    """``http://user:pw@host/p`` → (``http://host/p``, the ``Basic …`` value of its credentials)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return urlunsplit(parts._replace(netloc=host)), "Basic " + base64.b64encode(pair.encode()).decode()


class TargetError(ValueError):
    """A value a target cannot be built with; the message names where it came from."""


UNSET = object()   # build_target's interval not given (None is "not known": the schedule-free rule)


def build_target(id: str, url: str | None, where: Callable[[str], str], *, cls: type[Target] = Target,
                 profile: str | None = "countdown", interval: float | None | object = UNSET,
                 count: int | None = None, expect_bursts: int | None = None, watch: float | None = None,
                 concurrent_streams: int | None = None, **fields) -> Target:
    """The one builder of a target, for the CLI and the plugin, a targets file, ``--app`` and
    ``stream_check``: it checks the values a target is judged by and fills the countdown's
    default interval (``COUNTDOWN_INTERVAL_S``; no interval otherwise: the schedule-free rule).

    ``where(field)`` says where a field's value came from, as pytest-timeout's
    ``_validate_timeout(timeout, where)`` does: ``--interval``, ``t.toml:3: target 1, key
    'interval':``, ``stream_check(interval=...)``. ``cls``: ``Target`` or a subclass (``--app``'s
    ``AppTarget``), ``fields`` its other fields. Raises ``TargetError("<where> <why>")``."""
    def bad(name: str, why: str):
        raise TargetError(f"{where(name)} {why}")
    if profile is not None and profile not in PROFILES:
        bad("profile", f"must be one of {', '.join(PROFILES)}, not {profile!r}")
    if interval is UNSET:
        interval = COUNTDOWN_INTERVAL_S if profile == "countdown" else None
    for name, value in (("interval", interval), ("watch", watch)):
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
            bad(name, f"must be a positive number of seconds, not {value!r}")
    for name, value in (("count", count), ("expect_bursts", expect_bursts)):
        if value is not None and value < 1:
            bad(name, f"must be at least 1, not {value}")
    if concurrent_streams is not None:
        if not 1 <= concurrent_streams <= MAX_STREAMS:
            bad("concurrent_streams", f"must be 1 to {MAX_STREAMS}, not {concurrent_streams}")
        fields["concurrent_streams"] = concurrent_streams
    return cls(id, url, profile=profile, interval=None if interval is None else float(interval), count=count,
               expect_bursts=expect_bursts, watch=watch, **fields)


def option(name: str) -> str:
    """``where`` for a command-line option: the field ``expect_bursts`` came from ``--expect-bursts``."""
    return "--" + name.replace("_", "-")
