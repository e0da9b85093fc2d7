"""What the suite checks: a target's URL and the producer's schedule it is judged against."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from conformance.timing import Delivery, analyse, countdown_count

PROFILES = ("countdown", "sse", "ndjson", "bytes")
MAX_STREAMS = 64   # delivery.concurrent: more streams at once is a load test, not a conformance check


@dataclass
class Target:
    id: str
    url: str | None                   # None for a built-in target until it is started
    profile: str = "countdown"
    interval: float = 1.0             # the producer's time between writes, in seconds
    count: int | None = None          # countdown length when the URL does not say
    expect_bursts: int | None = None  # bytes profile: minimum separate arrivals
    headers: list[tuple[str, str]] = field(default_factory=list)
    insecure: bool = False
    builtin: str | None = None        # the built-in target's name, when the suite starts it
    large_url: str | None = None      # what delivery.large-body downloads (built-ins bring their own)
    large_size: int | None = None     # bytes of a built-in target's large body (None: the run's, else 1 GiB)
    concurrent_streams: int = 5       # delivery.concurrent: streams at once
    _deliveries: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        # user:password in a URL is sent as Basic credentials, as curl and browsers do, and taken
        # out of the URL so that no id, result, recording or report shows it.
        if self.url and "@" in (urlsplit(self.url).netloc or ""):
            url, auth = split_credentials(self.url)
            if self.id == self.url:
                self.id = url
            self.url = url
            if not any(k.lower() == "authorization" for k, _ in self.headers):
                self.headers = list(self.headers) + [("Authorization", auth)]

    @property
    def countdown_length(self) -> int | None:
        if self.count is not None:
            return self.count
        return countdown_count(urlsplit(self.url).path) if self.url else None

    def expected_span(self) -> float:
        """How long the producer takes from its first write to its last."""
        if self.profile == "countdown" and self.countdown_length is not None:
            return (self.countdown_length + 1) * self.interval
        return max(0, (self.expect_bursts or 1) - 1) * self.interval

    def delivery(self, rec) -> Delivery:
        """The delivery analysis of a recording, computed once and shared by the checks."""
        key = id(rec)
        if key not in self._deliveries:
            self._deliveries[key] = (rec, analyse(rec, self.profile, self.interval, self.countdown_length,
                                                  self.expect_bursts))
        return self._deliveries[key][1]


def split_credentials(url: str) -> tuple[str, str]:
    """``http://user:pw@host/p`` → (``http://host/p``, the ``Basic …`` value of its credentials)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return urlunsplit(parts._replace(netloc=host)), "Basic " + base64.b64encode(pair.encode()).decode()
