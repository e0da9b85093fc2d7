"""Delivery as browsers request it — compression and the response head.

Both checks read the ``get-compressed`` scenario (``conformance.scenarios.compressed``): the GET a browser
sends (``Accept-Encoding: gzip, deflate, br, zstd`` and the profile's ``Accept``), compared with
the identity GET recorded first. Compression that holds a stream is the most common real fault,
and every browser user sees it, so a hold under compression is a MUST failure, not a note.
"""
from conformance.analysis.figures import ms
from conformance.analysis.inferred import FreeMargins
from conformance.analysis.losses import WORDS, compare, unit_count
from conformance.checks._judging import as_finding, streams_on_time
from conformance.checks.catalogue import MUST, SHOULD, Finding, check, failed, passed, skipped
from conformance.scenarios.compressed import SCENARIO
from conformance.wire.codings import BROWSER_ACCEPT_ENCODING, DECODERS, content_codings, decode

READERS = {
    "trailing": ("a decoder that stops at the coded stream's end hands its reader only what came before it, "
                 "silently (httpx, urllib3 and Chromium do); a strict one raises (Node's zlib)"),
    "corrupt": "a decoder hands its reader what came before the bad byte, then stops or raises",
    "truncated": ("a decoder hands its reader what it decoded and then sees the body end mid-stream: some raise, "
                  "some return what they have"),
}


def content_lost(d, rec, identity, target, metrics: dict) -> str:
    """What the coding lost, in words (and ``metrics`` filled), or "" when nothing was lost:
    the coded stream stopped early (``codings.decode``'s fault), or it decoded to fewer units
    than the identity GET of the same run delivered (``losses.compare``)."""
    profile = target.profile_for(identity if identity is not None else rec)
    count = target.countdown_length
    what = WORDS.get(profile, "units")
    loss, why = compare(d.rec, identity, profile, count)
    if not d.fault and loss is None:
        return ""
    decoded = unit_count(d.rec, profile, count)
    parts = [f"{d.coding}: " + "; ".join(d.notes)] if d.fault else [f"{d.coding}: the body decodes to its end"]
    metrics.update(coding_fault=d.fault, stopped_at=d.stopped_at, units_decoded=decoded)
    if loss is not None:
        parts.append(f"{loss.got} of the {loss.wire} {what} the identity GET delivered in the same run could be "
                     f"decoded: {loss.lost} lost")
        metrics.update(units_identity=loss.wire, units_lost=loss.lost)
    elif decoded is not None and profile != "bytes":
        parts.append(f"{decoded} {what} decoded" + (f" ({why})" if why else ""))
    if d.fault == "trailing":
        parts.append(f"{d.after_bytes} bytes after the coded stream's end reach no reader as content")
    if d.fault:
        parts.append(f"{READERS[d.fault]}; client.* and browser.* say what each got in this run")
    return "; ".join(parts)


@check("delivery.compressed", MUST, "suite rule (RFC 9110 §8.4.1)",
       "Requested as a browser requests it (Accept-Encoding: gzip, deflate, br, zstd), the decoded "
       "content still arrives as the producer writes it: a compressing layer flushes what it has, "
       "it does not hold the content to compress it better. And it carries what the identity request "
       "delivers: the coded stream decodes to its end, nothing uncoded follows it, no unit is missing.",
       scenario=SCENARIO, timed=True, held_by_a_hold=True)
def test_compressed(seq, target):
    """Under the compression a browser asks for, the decoded content still streams."""
    rec, identity = seq.exchanges[0], getattr(seq, "identity", None)
    codings = content_codings(rec)
    coding = "+".join(codings)
    asked = f"asked with Accept-Encoding: {BROWSER_ACCEPT_ENCODING}"
    uninvited = ""
    if identity is not None and content_codings(identity):
        uninvited = (f"; note: the server compressed ({', '.join(content_codings(identity))}) although the "
                     "identity GET asked for no compression (Accept-Encoding: identity)")
    expected = "the decoded content progressively, compressed or not"
    if not codings:
        verdict, observed, metrics = streams_on_time(rec, target)
        return as_finding(verdict, f"{asked}, the server did not compress (no Content-Encoding); the body: "
                          f"{observed}{uninvited}", expected, content_encoding="identity", **metrics)
    if any(c not in DECODERS for c in codings):
        return skipped(f"Content-Encoding: {', '.join(codings)}: not a coding the suite can decode")
    d = decode(rec)
    plain = d.rec
    metrics = dict(content_encoding=coding, encoded_bytes=rec.body_bytes, decoded_bytes=plain.body_bytes)
    lost = content_lost(d, rec, identity, target, metrics)
    if lost:
        if plain.body_bytes:
            verdict, seen, more = streams_on_time(plain, target)
            metrics.update(more)
            lost += f". What was decoded arrived: {seen}"
        return failed(lost + uninvited, "the decoded content carries what the identity GET delivered: the coded "
                      "stream decodes to its end, nothing follows its end, no unit is missing", **metrics)
    if not plain.body_bytes:
        return failed(f"{coding}: no content could be decoded from {rec.body_bytes} encoded bytes ({rec.end})"
                      + "".join(f"; {n}" for n in d.notes), expected, **metrics)
    verdict, observed, more = streams_on_time(plain, target)
    observed = (f"{coding}: {rec.body_bytes} encoded bytes decoded read by read into {plain.body_bytes}; the "
                f"decoded content: {observed}" + "".join(f"; {n}" for n in d.notes))
    if verdict != "pass" and identity is not None:
        plain_verdict, _, _ = streams_on_time(identity, target)
        if plain_verdict == "pass":
            observed += f". Held only under {coding}: the identity GET streams"
            metrics["held_only_compressed"] = True
        else:
            observed += ". The identity GET is held too: the hold is not the compression's alone"
    return Finding(verdict, observed + uninvited, expected, {**metrics, **more})


@check("delivery.head-early", SHOULD, "suite rule (RFC 9110 §15, RFC 9112 §4)",
       "The response head is sent when the response starts, not held until the first body byte: a "
       "client (and a browser's EventSource) learns the status and the media type at once, and a "
       "proxy's or compressor's buffering of the head shows where a producer's first write is late.",
       scenario=SCENARIO, timed=True)
def test_head_early(seq, target):
    """The head is not held until the producer's first write."""
    held, seen, held_for = [], [], []
    recs = [("identity", getattr(seq, "identity", None)), ("browser-style", seq.exchanges[0])]
    for name, rec in recs:
        if rec is None or rec.error or rec.head_t is None:
            continue
        first = rec.first_body_t()
        codings = content_codings(rec)
        label = (f"{name} ({'+'.join(codings)})" if codings else f"{name} (not compressed)") if name == "browser-style" else name
        m = FreeMargins(rec.connect_s or 0.0)
        seen.append(f"{label}: head at {ms(rec.head_t)}, first body byte at {ms(first)}")
        if first is not None and rec.head_t - m.rtt >= m.hold_silence and first - rec.head_t < m.window:
            held.append(label)
            held_for.append(name)
    if not seen:
        return skipped("no response head was recorded")
    metrics = {f"{n.replace('-', '_')}_head_s": round(r.head_t, 4) for n, r in recs
               if r is not None and not r.error and r.head_t is not None}
    expected = (f"the head well before the first body byte when that comes late (a head {ms(1.0)} or more after "
                "the request, in the same read as the first body bytes, was held for them)")
    # which requests' heads came with their first body bytes ("identity, browser-style"; metrics are scalars)
    metrics["head_held_for"] = ", ".join(held_for)
    if held:
        only = " only" if len(held) < len(seen) else ""
        return failed("; ".join(seen) + f": the head was held until the first write{only} for the {', '.join(held)} "
                      "request", expected, **metrics)
    return passed("; ".join(seen), expected, **metrics)
