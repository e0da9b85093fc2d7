"""Redirects: where a target URL leads, found once, before anything is recorded.

By default the suite follows no redirect: a 3xx answer is an ``error`` that names its Location
(``location_note``), so a check never judges a server other than the one the user named. With
``--follow-redirects`` the suite reads the head of each URL (a GET closed as soon as its head is
in), follows at most ``MAX_HOPS`` Locations, and records the URL it ends at. Extra request headers
(``--header``, which may carry credentials) go only to the origin the user named: on a hop to
another origin they are dropped, as curl does without ``--location-trusted``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from conformance.wire.recorder import BadURL, Exchange, follow, parse_url

MAX_HOPS = 5
LOCATION_KEEP = 300   # characters of a server's Location kept in messages


def is_redirect(status: int | None) -> bool:
    return status in (301, 302, 303, 307, 308)


def location_note(rec) -> str:
    """How a finding describes a redirect the suite did not follow."""
    where = (rec.header_values("location") or [""])[0]
    return (f"HTTP {rec.status} {rec.reason}: a redirect to {where[:LOCATION_KEEP]!r}, which the suite does "
            f"not follow (point it at that URL, or pass --follow-redirects)")


@dataclass
class Resolution:
    url: str                                          # where the redirects ended
    hops: list[str] = field(default_factory=list)     # "302 → URL" per redirect followed
    headers_dropped: bool = False                     # --header values withheld from another origin
    error: str | None = None                          # why the URL could not be resolved


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def resolve(url: str, headers: list[tuple[str, str]], *, timeout: float, insecure: bool = False,
            secret_headers=()) -> Resolution:
    """Follow ``url``'s redirects. Never raises for anything a server sends."""
    out = Resolution(url)
    first_origin = _origin(url)
    for _ in range(MAX_HOPS + 1):
        same_origin = _origin(out.url) == first_origin
        ex = Exchange("redirect-probe", headers=list(headers) if same_origin else [])
        rec, _t0 = follow(out.url, ex, lambda parser, t: parser.status is None, timeout=timeout,
                          deadline=timeout, insecure=insecure, secret_headers=secret_headers)
        if rec.error:
            out.error = f"while following redirects, {out.url}: {rec.error}"
            return out
        if not is_redirect(rec.status):
            return out
        location = (rec.header_values("location") or [""])[0].strip()
        if not location:
            out.error = f"{out.url} answered HTTP {rec.status} without a Location"
            return out
        nxt = urljoin(out.url, location[:2048])
        try:
            parse_url(nxt)   # http or https only, with a host
        except BadURL as e:
            out.error = f"{out.url} redirects to {location[:LOCATION_KEEP]!r}, which is not followed: {e}"
            return out
        out.hops.append(f"{rec.status} → {nxt}")
        if _origin(nxt) != first_origin and headers:
            out.headers_dropped = True
        out.url = nxt
    out.error = f"more than {MAX_HOPS} redirects from {url}"
    return out
