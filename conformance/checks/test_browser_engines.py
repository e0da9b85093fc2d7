"""Browser engines — does every engine users have get the content as it arrives?

The same page and the same page script as ``browser.progressive-render`` (Chromium), in WebKit
(WebKitGTK, Safari's WebCore) and in Firefox, each driven over WebDriver (see
``conformance/engines.py``). The verdict is judged as Chromium's is (the countdown's groups
entering the DOM and painted in separate bursts; an SSE stream's events reaching an
``EventSource``, NDJSON lines or bytes a ``fetch()`` body reader, on the producer's schedule), and
each group is timed against the raw recorder's GET of the same run (its lag behind the wire).

Where the wire delivered the content progressively and the engine still held it, the hold is
the engine's own: the finding says so, with the engine's documented threshold where there is one
(WebKit parses a partial HTML document only after about 512 bytes: bugs.webkit.org 252413,
265386), and the target's diagnosis names the engine as the hop with its fix.

An engine that is not installed is ``skip`` with its install hint, never a failure.
"""
from conformance.browser import group_index
from conformance.catalogue import CHECKS, SHOULD, check
from conformance.engines import ENGINES, WEBKIT_BUGS, WEBKIT_PARTIAL_BYTES  # noqa: F401 (registers the scenarios)
from conformance.timing import Margins, countdown_group_offsets, split_bursts

REQUIREMENT = ("A real browser gets the content as it arrives: in headless {label} the countdown's items enter "
               "the DOM and are painted in as many separate bursts as the producer has separate writes in time, "
               "not all at the end; an SSE stream's events reach an EventSource, and NDJSON lines or bytes a "
               "fetch() body reader, on the producer's schedule.")
SPEC = "suite rule (HTML Standard §13.2 parsing; RFC 9112 §7.1)"


def wire_groups(rec, target) -> list[float | None]:
    """When each countdown group reached the raw recorder (s after its request); [] without it."""
    ref = rec.reference
    if ref is None or ref.error or not ref.pieces:
        return []
    return list(target.delivery(ref).group_times or [])


def engine_findings(rec, target, finding, engine) -> None:
    """Add to a countdown finding: each group's lag behind the raw recorder, and when the wire was
    progressive but the engine held it, the engine's own hold with its threshold and fix."""
    page = rec.countdown
    if page is None or rec.count is None or finding.verdict in ("skip", "error"):
        return
    wire = wire_groups(rec, target)
    if not wire:
        return
    start = page.navigation.get("request_start") or 0.0
    lags = []
    dom = {}
    for key, g in page.groups.items():
        k = group_index(key, rec.count)
        if k is not None and g.get("inserted_s") is not None and k < len(wire) and wire[k] is not None:
            dom[k] = g["inserted_s"] - start
            lags.append(round(dom[k] - wire[k], 4))
    if lags:
        srt = sorted(lags)
        finding.metrics.update(lag_median_s=srt[len(srt) // 2], lag_max_s=srt[-1])
        finding.observed += (f"; behind the raw recorder's GET of the same run each group entered {engine}'s DOM "
                             f"{srt[len(srt) // 2] * 1000:.0f} ms later (median), at most {srt[-1] * 1000:.0f} ms")
    known = [t for t in wire if t is not None]
    margins = Margins(rec.interval_s or target.interval or 1.0, rec.reference.connect_s or 0.0)
    bursts = split_bursts([(t, 1) for t in known], margins.burst_gap)
    wire_ok = len(bursts) >= 2 and max(b.size for b in bursts) <= margins.groups_per_burst()
    if finding.verdict not in ("fail", "warn") or not wire_ok or not dom:
        return
    first = min(dom.values())
    offsets = countdown_group_offsets(rec.reference.body or b"", rec.count)
    had = [k for k, t in enumerate(wire) if t is not None and t <= first]
    body_bytes = max((offsets[k] for k in had if k < len(offsets) and offsets[k] is not None), default=0)
    total = len(rec.reference.body or b"")
    ctype = next((v for k, v in rec.reference.headers if k.lower() == "content-type"), "")
    finding.metrics.update(engine=engine, engine_hold=True, wire_bursts=len(bursts), body_bytes=total)
    if engine == "WebKitGTK" or engine == "WebKit":
        why = (f"the wire delivered the page progressively ({len(bursts)} bursts in the raw recorder's GET), but "
               f"WebKit held it: nothing entered its DOM until {first:.2f} s, when the raw recorder already had "
               f"{len(had)} of {len(wire)} groups; the whole body is {total} bytes. WebKit does not parse a partial "
               f"HTML document until about {WEBKIT_PARTIAL_BYTES} bytes of it have come ({WEBKIT_BUGS})")
        fix = (f"send at least {2 * WEBKIT_PARTIAL_BYTES} bytes before the first item that must show (1 KiB of "
               "padding, an HTML comment is enough, makes WebKit parse each piece as it comes)")
    else:
        why = (f"the wire delivered the page progressively ({len(bursts)} bursts in the raw recorder's GET), but "
               f"{engine} held it: nothing entered its DOM until {first:.2f} s")
        fix = "send more of the document up front (padding), and declare the charset in Content-Type"
    if "charset" not in ctype.lower():
        fix += "; declare the charset in Content-Type (text/html; charset=utf-8) so no engine waits to find it"
    finding.metrics["engine_fix"] = fix
    finding.observed += f"; {why}"


def judge_engine(rec, target, engine: str):
    """The Chromium judge on the engine's record, then the engine's comparison with the wire."""
    finding = CHECKS["browser.progressive-render"].judge_fn(rec, target)
    if finding.verdict == "skip":
        return finding
    name = (rec.browser or engine).split(" ")[0]
    finding.metrics.setdefault("engine", name)
    engine_findings(rec, target, finding, name)
    return finding


@check("browser.progressive-render.webkit", SHOULD, SPEC, REQUIREMENT.format(label="WebKit (WebKitGTK)"),
       scenario="browser-webkit", needs_success=False)
def test_progressive_render_webkit(rec, target):
    """Headless WebKit (Safari's engine) gets the content item by item, event by event."""
    return judge_engine(rec, target, "WebKit")


@check("browser.progressive-render.firefox", SHOULD, SPEC, REQUIREMENT.format(label="Firefox"),
       scenario="browser-firefox", needs_success=False)
def test_progressive_render_firefox(rec, target):
    """Headless Firefox gets the content item by item, event by event."""
    return judge_engine(rec, target, "Firefox")

