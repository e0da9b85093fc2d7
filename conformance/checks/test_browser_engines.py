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
from conformance.scenarios.browser import group_index
from conformance.checks._judging import judge_render
from conformance.checks.catalogue import SHOULD, check
from conformance.scenarios.engines import ENGINES, WEBKIT_BUGS, WEBKIT_PARTIAL_BYTES  # noqa: F401 (registers the scenarios)
from conformance.analysis.units import countdown_group_offsets
from conformance.analysis.timing import Margins, split_bursts

REQUIREMENT = ("A real browser gets the content as it arrives: in headless {label} the countdown's items enter "
               "the DOM and are painted in as many separate bursts as the producer has separate writes in time, "
               "not all at the end; an SSE stream's events reach an EventSource, and NDJSON lines or bytes a "
               "fetch() body reader, on the producer's schedule.")
WEBKIT_SOURCE = "https://bugs.webkit.org/show_bug.cgi?id=252413"
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
    installed = page.navigation.get("observer_installed")
    at_install = [k for k, t in dom.items() if installed is not None and t + start <= installed + 0.002]
    gap = page.navigation.get("observer_gap")
    if installed is not None and len(at_install) > 1 and gap is not None and gap > margins.burst_gap / 2:
        finding.metrics["groups_at_install"] = len(at_install)
        # the look before the install saw none of the new page: what the wire had by then was held
        held = [k for k, t in enumerate(wire) if t is not None and t <= installed - gap - start]
        finding.metrics["wire_groups_before_page"] = len(held)
        if len(held) > margins.groups_per_burst():
            finding.observed += (f"; WebDriver's look at {installed - gap:.2f} s still saw none of the new page, when the "
                                 f"raw recorder already had {len(held)} of its groups")
        elif finding.verdict in ("fail", "warn") and finding.metrics.get("largest_dom_burst", 0) <= len(at_install):
            finding.verdict = "warn"
            finding.observed += (f"; WebDriver could install the page's observer only {installed:.2f} s in, "
                                 f"{gap * 1000:.0f} ms after its previous look at the page (it has no script that runs "
                                 f"before a page's first byte): the {len(at_install)} groups already there were timed "
                                 "then and cannot be told apart, so this burst may not be the engine's")
            return
    if finding.verdict not in ("fail", "warn") or not wire_ok or not dom:
        return
    first_dom = min(dom.values())
    painted = [page.painted_s(k) for k in page.groups if page.painted_s(k) is not None]
    first_paint = (min(painted) - start) if painted else None
    dom_ok = finding.metrics.get("dom_bursts", 0) >= 2 and \
        finding.metrics.get("largest_dom_burst", 99) <= finding.metrics.get("allowed_per_burst", 0)
    offsets = countdown_group_offsets(rec.reference.body or b"", rec.count)
    seen_at = first_dom if not dom_ok else (first_paint or first_dom)
    had = [k for k, t in enumerate(wire) if t is not None and t <= seen_at]
    body_had = max((offsets[k] for k in had if k < len(offsets) and offsets[k] is not None), default=0)
    total = len(rec.reference.body or b"")
    ctype = next((v for k, v in rec.reference.headers if k.lower() == "content-type"), "")
    wire_said = (f"the wire delivered the page progressively ({len(bursts)} bursts in the raw recorder's GET of the "
                 f"same run)")
    if engine.startswith("WebKit") and not dom_ok:
        cause = (f"WebKit does not parse a partial HTML document until about {WEBKIT_PARTIAL_BYTES} bytes of it have "
                 f"come ({WEBKIT_BUGS})")
        why = (f"{wire_said}, but nothing entered WebKit's DOM until {first_dom:.2f} s, when the raw recorder had "
               f"{len(had)} of {len(wire)} groups (about {body_had} bytes of the {total}-byte body): {cause}")
        fix = ("send at least 1 KiB before the first item that must show, as rendered text (it may be off-screen, "
               "e.g. a div at left:-10000px): WebKit then parses and paints each piece as it comes (measured)")
    elif engine.startswith("WebKit"):
        cause = ("WebKit paints a partial document only once it is visually non-empty (enough rendered text; "
                 "comments, whitespace and markup do not count): until then, or the load's end, nothing is painted")
        why = (f"{wire_said} and each group entered WebKit's DOM on time, but WebKit painted nothing until "
               f"{(first_paint or 0):.2f} s: {cause} ({WEBKIT_BUGS})")
        fix = ("put about 1 KiB of rendered text before the first item (it may be off-screen, e.g. a div at "
               "left:-10000px); an HTML comment of padding makes WebKit parse, not paint (measured)")
    else:
        cause = f"{engine} holds what the wire delivered"
        why = f"{wire_said}, but nothing entered {engine}'s DOM until {first_dom:.2f} s"
        fix = "send more of the document up front (padding of rendered text)"
    if "charset" not in ctype.lower():
        fix += "; declare the charset in Content-Type (text/html; charset=utf-8) so no engine waits to find it"
    finding.metrics.update(engine_hold=True, engine_cause=cause, engine_fix=fix, wire_bursts=len(bursts),
                           body_bytes=total, engine_source=WEBKIT_SOURCE if engine.startswith("WebKit") else "")
    finding.observed += f"; {why}"


def judge_engine(rec, target, engine: str):
    """The Chromium judge on the engine's record, then the engine's comparison with the wire."""
    finding = judge_render(rec, target)
    if finding.verdict == "skip":
        return finding
    name = (rec.browser or engine).split(" ")[0]
    # WebDriver does not show the request's headers: what was sent is not known, not "not sent"
    finding.observed = finding.observed.replace("asked Accept-Encoding: (not sent)",
                                                "Accept-Encoding sent: not known over WebDriver")
    finding.metrics.setdefault("engine", name)
    engine_findings(rec, target, finding, name)
    return finding


@check("browser.progressive-render.webkit", SHOULD, SPEC, REQUIREMENT.format(label="WebKit (WebKitGTK)"),
       scenario="browser-webkit", needs_success=False, held_by_a_hold=True)
def test_progressive_render_webkit(rec, target):
    """Headless WebKit (Safari's engine) gets the content item by item, event by event."""
    return judge_engine(rec, target, "WebKit")


@check("browser.progressive-render.firefox", SHOULD, SPEC, REQUIREMENT.format(label="Firefox"),
       scenario="browser-firefox", needs_success=False, held_by_a_hold=True)
def test_progressive_render_firefox(rec, target):
    """Headless Firefox gets the content item by item, event by event."""
    return judge_engine(rec, target, "Firefox")

