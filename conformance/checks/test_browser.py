"""Browser — does a real browser get the content as it arrives?

Headless Chromium (Debian's, driven with Playwright; see ``conformance/scenarios/browser.py``) loads the
target's countdown page. An observer injected before the page's first byte records when each of
the countdown's groups enters the DOM and when it is painted, on the page's own clock. The DOM
times are grouped into bursts with the same rule and margins as ``delivery.progressive``
(``conformance.analysis.timing.split_bursts`` and ``Margins``), and so are the paint times: a page shown
all at the end, though every byte was sent on time, is what users of a streaming endpoint
actually see when something holds it (a proxy, a charset prescan, MIME sniffing).

Chromium's own network view (when its network service handed each group's bytes to the page,
after any MIME sniffing) is shown beside the DOM times, so a hold in the renderer can be told
from bytes that came late or were held for sniffing; the verdict reads the DOM and paint times
against the producer's schedule, as a user would.

SSE, NDJSON and bytes are read by a page's script on the target's own origin: SSE through
``EventSource`` (its ``message`` events and the named types the stream uses), NDJSON and bytes
through a ``fetch()`` body reader, each event or chunk timed as the script gets it. That
timeline is judged as the client checks judge theirs (``judge_client``: ``delivery.first-byte``
and ``delivery.progressive`` on what the script got, no margins of its own), beside Chromium's
network service (DevTools) and the raw recorder's GET; the finding names the Accept-Encoding
Chromium sent and the Content-Encoding it got.
"""
from dataclasses import replace

from conformance.analysis.figures import ms
from conformance.analysis.inferred import DECIDE
from conformance.analysis.timing import Margins, median
from conformance.analysis.units import countdown_count
from conformance.checks.catalogue import SHOULD, Finding, check, failed, passed
from conformance.checks.test_clients import judge_client
from conformance.scenarios.browser import page_record, progress, timeline


def at(times) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


def bursts(p, what: str) -> str:
    n, largest = len(p.bursts), p.largest
    return (f"{what} in {n} burst{'s' * (n != 1)}, the largest (at {largest.start:.3f} s) carrying "
            f"{len(largest.groups)} of them (at {at(t for t, _ in p.times)} s)")


def hold_times(page) -> list[tuple[str, float]]:
    """(group, seconds from its bytes reaching Chromium's network stack to its entering the DOM)."""
    return [(k, round(g["inserted_s"] - g["arrived_s"], 4)) for k, g in page.groups.items()
            if g.get("arrived_s") is not None and g.get("inserted_s") is not None]


@check("browser.progressive-render", SHOULD, "suite rule (HTML Standard §13.2 parsing; RFC 9112 §7.1)",
       "A real browser gets the content as it arrives: in headless Chromium the countdown's items "
       "enter the DOM and are painted in as many separate bursts as the producer has separate writes "
       "in time, not all at the end; an SSE stream's events reach an EventSource, and NDJSON lines "
       "or bytes a fetch() body reader, on the producer's schedule.", scenario="browser", needs_success=False, held_by_a_hold=True)
def test_progressive_render(rec, target):
    """Headless Chromium gets the content item by item, event by event, not all at the end."""
    if rec.skip_reason:
        return Finding("skip", rec.skip_reason)
    if rec.stream is not None:
        return judge_stream(rec, target)
    page = rec.countdown
    if page is None:
        return Finding("error", "the browser recorded no page")
    if page.status is not None and not 200 <= page.status < 300:
        return Finding("error", f"HTTP {page.status} {page.reason} in {engine_of(rec)}", "a 2xx response")
    count, interval = rec.count, rec.interval_s or target.interval or target.pace_s
    if count is None:
        return Finding("skip", "not a countdown page the suite can count (no /N in its URL and no --count)")
    if interval is None:   # no schedule given, and the wire's own GET showed no pace to go by
        groups = len(timeline(page, count, "inserted"))
        return Finding("warn", f"{rec.browser or 'Chromium'} put {groups} of the countdown's {count + 2} timed writes in "
                       "the DOM, but the producer's interval is unknown (none given, and the raw recorder's GET "
                       f"showed no pace of its own): nothing to judge the page's timing against; {DECIDE}",
                       "the countdown's timed writes in separate bursts")
    nav = page.navigation
    rtt = max(0.0, (nav.get("connect_end") or 0) - (nav.get("connect_start") or 0))
    margins = Margins(interval, rtt)
    expected = count + 2
    dom = progress(page, count, margins, "inserted")
    paint = progress(page, count, margins, "painted")
    holds = hold_times(page)
    browser = rec.browser or "Chromium"

    notes = []
    if holds:
        worst = max(holds, key=lambda h: h[1])
        arrived = sorted(g["arrived_s"] for g in page.groups.values() if g.get("arrived_s") is not None)
        notes.append(f"Chromium's network service handed each group's bytes to the page (DevTools "
                     f"Network.dataReceived) at {at(arrived)} s; from there to the DOM took "
                     f"{ms(median([h for _, h in holds]))} (median), at most {ms(worst[1])} ({worst[0]})")
    if len(dom.times) < expected:
        notes.append(f"{expected - len(dom.times)} of the {expected} groups never appeared in the page"
                     + (f" (its text starts {page.text_start[:80]!r})" if page.text_start else ""))
    if page.load_error:
        notes.append(f"the navigation ended with: {page.load_error}")
    if nav.get("response_start") is not None:
        notes.append(f"navigation timing: response {ms(nav['response_start'])} to {ms(nav.get('response_end'))}, "
                     f"first paint {ms(page.first_paint_s)}")
    if page.content_type is not None:
        notes.append(f"Content-Type {page.content_type!r}")
    holder = holder_note(rec, margins)
    if holder:
        notes.append(holder)
    tail = ("; " + "; ".join(notes)) if notes else ""

    metrics = dict(expected_bursts=expected, groups_seen=len(dom.times), dom_bursts=len(dom.bursts),
                   paint_bursts=len(paint.bursts), allowed_per_burst=dom.allowed,
                   largest_dom_burst=len(dom.largest.groups) if dom.bursts else 0,
                   largest_paint_burst=len(paint.largest.groups) if paint.bursts else 0,
                   first_paint_s=page.first_paint_s,
                   last_group_inserted_s=dom.times[-1][0] if dom.times else None,
                   browser_hold_max_s=max((h for _, h in holds), default=None))
    expected_text = (f"the countdown's {expected} timed writes enter the DOM and are painted in separate bursts "
                     f"(a burst = times less than {ms(margins.burst_gap)} apart), none carrying more than "
                     f"{dom.allowed} of them")
    if len(dom.times) < 2:
        return failed(f"{browser} showed {len(dom.times)} of the countdown's {expected} timed writes{tail}",
                      expected_text, **metrics)
    how = "Element Timing" if page.element_timing else "requestAnimationFrame"
    observed = f"{browser}: the countdown's {len(dom.times)} timed writes {bursts(dom, 'entered the DOM')}"
    observed += f"; {bursts(paint, f'were painted ({how})')}" if paint.times else "; no paint was recorded"
    ok = dom.ok and (paint.ok or not paint.times)
    return (passed if ok else failed)(observed + tail, expected_text, **metrics)


def holder_note(rec, margins) -> str:
    """The holder page's iframes, for the report (noted, not judged)."""
    h = rec.holder
    if h is None:
        return f"holder page: {rec.holder_note}" if rec.holder_note else ""
    if h.status is not None and not 200 <= h.status < 300:
        return f"holder page {h.url}: HTTP {h.status}"
    if not h.iframes:
        return f"holder page {h.url}: no iframes" + (f" ({h.load_error})" if h.load_error else "")
    parts = []
    for f in h.iframes:
        n = countdown_count(f["src"])
        if n is None:
            parts.append(f"{f['src']} (not a countdown)")
            continue
        p = progress(page_record(f["page"]), n, margins, "inserted")
        where = f"{f['src']} (in the DOM at {f['inserted_s']:.2f} s)"
        if not p.times:
            parts.append(f"{where}: nothing shown")
            continue
        parts.append(f"{where}: {len(p.times)}/{n + 2} groups in {len(p.bursts)} bursts from {p.times[0][0]:.2f} "
                     f"to {p.times[-1][0]:.2f} s, {'progressive' if p.ok else 'held'}")
    return f"holder page {h.url}, {len(h.iframes)} iframes: " + "; ".join(parts)


# What judge_client says of "the caller" and "the client", said of the page's script and Chromium.
REWORDS = (("reached the caller", "reached the page's script"), ("the caller got", "the page's script got"),
           ("held in the client", "after Chromium's network service had it"),
           ("the bytes reached the socket of Chromium on time",
            "Chromium's network service (DevTools) had them on time: the page's script got them late"))


def engine_of(rec) -> str:
    """The engine's name as its record says it ("Chromium", "WebKitGTK", "Firefox")."""
    return (rec.browser or "Chromium").split(" ")[0]


def judge_stream(rec, target):
    """An SSE, NDJSON or bytes stream as a page's script read it, judged as a client's caller is."""
    s = rec.stream
    if s.status is not None and not 200 <= s.status < 300:
        return Finding("error", f"HTTP {s.status} {s.reason} in {engine_of(rec)}", "a 2xx response")
    if target.profile is None:   # no profile given, none read from a GET: as the page read it
        target = replace(target, profile=s.profile)
    finding = judge_client(rec.client_run(target), target, engine_of(rec))
    observed = finding.observed
    for old, new in REWORDS:
        observed = observed.replace(old, new)
    notes = []
    if s.unheard:
        notes.append(f"{s.unheard} events DevTools saw reached no listener of the page (it listened for "
                     f"{', '.join(s.listened)}; a type first seen mid-stream is listened for from then on)")
    if s.end not in (None, "complete"):
        notes.append(f"the reading ended: {s.end}" + (f" after {s.end_s:.2f} s" if s.end_s is not None else "")
                     + (" (the watch window)" if s.end == "watched" else ""))
    notes.append(f"times: {s.clock}")
    finding.observed = observed + "; " + "; ".join(notes)
    codings = [v for k, v in s.response_headers if k.lower() == "content-encoding"]
    asked = next((v for k, v in s.request_headers if k.lower() == "accept-encoding"), None)
    finding.metrics.update(accept_encoding=asked, content_encoding=", ".join(codings) or "identity",
                           api=s.api, events_seen=len(s.events), network_pieces=len(s.network))
    return finding
