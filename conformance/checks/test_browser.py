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
from conformance.checks._judging import judge_render
from conformance.checks.catalogue import SHOULD, check


@check("browser.progressive-render", SHOULD, "suite rule (HTML Standard §13.2 parsing; RFC 9112 §7.1)",
       "A real browser gets the content as it arrives: in headless Chromium the countdown's items "
       "enter the DOM and are painted in as many separate bursts as the producer has separate writes "
       "in time, not all at the end; an SSE stream's events reach an EventSource, and NDJSON lines "
       "or bytes a fetch() body reader, on the producer's schedule.", scenario="browser", needs_success=False, held_by_a_hold=True)
def test_progressive_render(rec, target):
    """Headless Chromium gets the content item by item, event by event, not all at the end."""
    return judge_render(rec, target)
