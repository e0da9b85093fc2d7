"""The chain — what the hops in front of the origin (proxy, CDN, middleware) add.

Judged with ``--reference ORIGIN_URL``: the origin and the target are recorded at the same time
with the same request (``conformance/scenarios/chain.py``), their events matched by content, and each
event's arrival through the chain compared with its arrival straight from the origin. RFC 9110
§7.6 lets an intermediary forward a message as it receives it; RFC 9112 §7.1's chunked framing
means nothing obliges one to hold it.
"""
from conformance.analysis.figures import ms
from conformance.analysis.timing import median
from conformance.checks.catalogue import MUST, Finding, check, failed, passed, skipped
from conformance.scenarios.chain import CODINGS, HINT, compare
from conformance.wire.codings import BROWSER_ACCEPT_ENCODING

LABELS = {"identity": "identity", "compressed": f"Accept-Encoding: {BROWSER_ACCEPT_ENCODING}"}


def summary(c) -> str:
    worst, held = c.worst, c.held()
    coded = "" if c.encodings == ("identity", "identity") else f" (Content-Encoding: origin {c.encodings[0]}, target {c.encodings[1]}; decoded)"
    if not coded and c.coding != "identity":
        coded = " (neither side compressed)"
    if worst is None:
        return (f"{LABELS.get(c.coding, c.coding)}{coded}: none of the origin's {len(c.events)} events came through the chain "
                f"(matched by {c.match}; the target sent {c.target_found})")
    text = (f"{LABELS.get(c.coding, c.coding)}{coded}: {len(c.matched)} of {len(c.events)} events matched by {c.match}; the chain held them "
            f"median {ms(median(held))}, at most {ms(worst.held)} ({max(0.0, worst.held) / c.interval if c.interval else 0:.1f} "
            f"events, {worst.label}); {c.target_bursts} bursts through the chain where the origin sent {c.origin_bursts}")
    if c.merged > 1:
        text += f"; one burst at {c.merged_at:.3f} s carried {c.merged} of the origin's bursts"
    if c.production_s is not None:
        text += f"; the chain's copy was made {ms(abs(c.production_s))} {'later' if c.production_s >= 0 else 'earlier'} (probe timestamps), taken off"
    if c.held_back:
        text += (f"; {len(c.held_back)} events had not come through the chain when the recording ended "
                 f"({c.held_back[0].label} first)")
    elif c.missing:
        text += f"; {len(c.missing)} of the origin's events are not in the target's body ({c.missing[0].label} first)"
    return text + "".join(f"; {n}" for n in c.notes)


@check("delivery.chain", MUST, "suite rule (RFC 9110 §7.6, RFC 9112 §7.1)",
       "The chain in front of the origin adds no holding: each event reaches the client about when "
       "it leaves the origin (within half an interval, or the scheduling noise and two round trips), "
       "and in no burst the origin did not send.", scenario="chain", needs_success=False, timed=True)
def test_chain(chain, target):
    """Each event reaches the client through the chain about when the origin sends it."""
    if chain.skip:
        return skipped(chain.skip)
    bad = [leg for leg in chain.legs if not 200 <= (leg.rec.status or 0) < 300]
    if bad:
        return Finding("error", f"{bad[0].role} ({bad[0].rec.url}), {bad[0].coding}: HTTP {bad[0].rec.status} {bad[0].rec.reason}",
                       "a 2xx response from both")
    results = [compare(*chain.pair(coding), target.profile, target.countdown_length, target.interval)
               for coding, _ in CODINGS]
    done = [c for c in results if not isinstance(c, str)]
    if not done:
        return skipped(f"nothing to compare: {results[0]}; {HINT}")
    observed = "; ".join(r if isinstance(r, str) else summary(r) for r in results)
    limit = done[0]
    expected = (f"every event held at most {ms(limit.limit)}, no burst carrying more than {limit.allowed_merge} "
                f"of the origin's bursts")
    metrics = {}
    for c in done:
        pre = "" if c.coding == "identity" else f"{c.coding}_"
        metrics.update({f"{pre}max_held_ms": round(c.worst.held * 1000, 1) + 0.0 if c.matched else None,
                        f"{pre}median_held_ms": round(median(c.held()) * 1000, 1) + 0.0 if c.matched else None,
                        f"{pre}max_held_events": round(c.worst.held / c.interval, 2) + 0.0 if c.matched and c.interval else None,
                        f"{pre}held_ms": [round(h * 1000, 1) + 0.0 for h in c.held()[:50]],
                        f"{pre}origin_bursts": c.origin_bursts, f"{pre}target_bursts": c.target_bursts,
                        f"{pre}merged_bursts": c.merged, f"{pre}ok": c.ok})
    return (passed if all(c.ok for c in done) else failed)(observed, expected, limit_ms=round(limit.limit * 1000, 1),
                                                          **metrics)
