"""One cause, said once, with the hop and its fix: from a target's findings to ``diagnosis``
(docs/design.md, results.json).

Several findings often have one cause: a stream held to the end fails first-byte, progressive,
cadence, concurrent, HTTP/1.0 and every client at once. ``diagnose`` names each distinct cause
once, as ``{"cause", "hop", "evidence", "fix", "explains", "kind", "certainty", "source"}``, and
``explains`` lists the checks it accounts for, which then point at it (``results[i]["cause"]``)
instead of repeating it.

What it reads, beside the findings (``Evidence``, from ``evidence_of``): the response headers
(``Server``, ``Via``, ``X-Varnish``, ``X-Cache``, ``cf-ray``…, and whether their names were
rewritten in lower case), the body's framing (close-delimited behind a proxy: an HTTP/1.0-style
upstream), the sizes in which a held body was released (a buffer's size), whether the target is
HTTPS (a hold over HTTP/1.1 while ``delivery.h2`` streams is one cause), and ``delivery.chain``
(with ``--reference``: the origin recorded beside the chain). The detection is here; which hop
each piece of evidence points at, its fix and its source are data, ``conformance/data/
culprits.toml`` (validated by ``conformance/schema/culprits.schema.json``).

A hop named from headers or signs is a guess, worded as one ("likely …, a guess from …"), with
its evidence; when ``delivery.chain`` fails, the hold is measured between the origin and the
client, and the diagnosis says "certain".
"""
from __future__ import annotations

import re
import statistics
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from conformance.analysis.figures import ms
from conformance.checks.catalogue import load_all

CULPRITS = Path(__file__).parent.parent / "data" / "culprits.toml"
SCHEMA = Path(__file__).parent.parent / "schema" / "culprits.schema.json"
CERTAIN = "--reference ORIGIN_URL (the same request to the origin behind the chain) or the probe would make it certain"
HINT_HEADERS = ("server", "via", "x-varnish", "x-cache", "cf-ray", "x-powered-by")
SIGN_WORDS = {
    "compressed-only": "held only under compression, the identity request streams",
    "compressed": "the response is compressed ({coding})",
    "whole-body": "the held response carries Content-Length{length} on {media} (the whole body was known before the head was sent)",
    "lowercase-headers": "every header name is in lower case (a proxy rewrote them)",
    "close-delimited": "the body is delimited by closing the connection",
    "etag": "{etag} on a streamed body (a layer read the whole body to hash it before it sent the head)",
    "x-accel-ignored": "X-Accel-Buffering: no reached the client (nginx honours it and does not pass it on: the hop that held the stream is not an nginx that read it)",
}
# Media types whose body is a stream by nature: a Content-Length or a hash of the body on them
# says a layer held it whole.
STREAMING_MEDIA = ("text/event-stream", "application/x-ndjson", "application/jsonl", "application/json-seq",
                   "application/ndjson", "application/jsonlines", "application/x-jsonlines")
DELAY_MIN_MS = 50.0    # a fixed delay smaller than this is noise, not a cause


@dataclass
class Cause:
    cause: str
    hop: str
    evidence: str
    fix: str
    explains: list[str] = field(default_factory=list)
    kind: str = ""
    certainty: str = "guess"   # "certain" when delivery.chain measured the hold against the origin
    source: str = ""
    see: list[str] = field(default_factory=list)   # the documentation of the further fixes it names

    def to_dict(self) -> dict:
        d = {"cause": self.cause, "hop": self.hop, "evidence": self.evidence, "fix": self.fix,
             "explains": self.explains, "kind": self.kind, "certainty": self.certainty, "source": self.source}
        if self.see:
            d["see"] = list(self.see)
        return d


@dataclass
class Evidence:
    """What one run shows beside its findings (all optional)."""
    headers: list = field(default_factory=list)    # the main response's, as received
    framing: str | None = None                     # "chunked", "content-length", "close", "none"
    http_version: str | None = None
    tls: bool = False
    release_sizes: list[int] = field(default_factory=list)   # bytes per burst of the main GET
    reference: str | None = None                   # --reference: the origin behind the chain
    origin_framing: str | None = None              # the origin's, recorded directly (chain scenario)


def load_table(path: Path = CULPRITS) -> dict:
    return tomllib.loads(path.read_text())


def load_culprits(path: Path = CULPRITS) -> list[dict]:
    return load_table(path)["culprit"]


def evidence_of(rec, target=None, chain=None) -> Evidence:
    """The evidence in the main GET's recording, the target, and the chain scenario's record."""
    ev = Evidence(reference=getattr(target, "reference", None))
    if chain is not None and getattr(chain, "legs", None):
        origin = next((leg.rec for leg in chain.legs if leg.role == "origin" and leg.coding == "identity"), None)
        ev.origin_framing = getattr(origin, "framing", None)
    if rec is None or getattr(rec, "error", None):
        return ev
    ev.headers = list(getattr(rec, "headers", None) or [])
    ev.framing, ev.http_version = rec.framing, rec.http_version
    ev.tls = bool(rec.tls) or (rec.url or "").startswith("https:")
    if target is not None:
        try:
            ev.release_sizes = [b.size for b in target.delivery(rec).bursts]
        except Exception:  # noqa: BLE001 - evidence is optional; a recording it cannot read gives none
            ev.release_sizes = []
    return ev


def signs_of(ev: Evidence) -> set[str]:
    signs = set()
    names = [k for k, _ in ev.headers if any(c.isalpha() for c in k)]
    if len(names) >= 3 and all(k == k.lower() for k in names) and ev.http_version in ("1.1", "1.0"):
        signs.add("lowercase-headers")
    if ev.framing == "close":
        signs.add("close-delimited")
    if ev.framing == "content-length":
        signs.add("whole-body")
    if _header(ev.headers, "etag") or _header(ev.headers, "content-md5"):
        signs.add("etag")
    if (_header(ev.headers, "x-accel-buffering") or "").strip().lower() == "no":
        signs.add("x-accel-ignored")
    return signs


def _header(headers, name: str) -> str | None:
    return next((v for k, v in headers or [] if k.lower() == name), None)


def sign_words(sign: str, ev: Evidence, coding: str) -> str:
    """A sign in words, with the header values it rests on."""
    media = (_header(ev.headers, "content-type") or "a response without Content-Type").split(";")[0].strip()
    length = _header(ev.headers, "content-length")
    etag = next((f"{k}: {v}" for k, v in ev.headers if k.lower() in ("etag", "content-md5")), "an ETag")
    return SIGN_WORDS[sign].format(coding=coding, media=media, length=f": {length}" if length else "", etag=etag)


def release_size(sizes: list[int]) -> int | None:
    """The size a held body was released in, when its releases (but the last) share one: a
    buffer flushed when full (1 KiB or more: smaller ones are events). One release is enough when
    its size is a power of two."""
    body = [s for s in sizes[:-1] if s > 0]
    if not body:
        return None
    size, n = Counter(body).most_common(1)[0]
    if n < max(1, 0.6 * len(body)):
        return None
    if size >= 1024 and (n >= 2 or size & (size - 1) == 0):
        return size
    return None


def fixed_delay(held_ms: list[float] | None) -> float | None:
    """The delay every event was held, when the chain held all alike (the last may come with the
    end of the body, unheld): median ms, or None."""
    if not held_ms or len(held_ms) < 3:
        return None
    body = held_ms[:-1]
    med = statistics.median(body)
    if med < DELAY_MIN_MS or max(body) - min(body) > max(30.0, 0.25 * med):
        return None
    return med


def culprit_for(kind: str, headers: list[list[str]], culprits: list[dict] | None = None, *, signs=frozenset(),
                size: int | None = None, delay_ms: float | None = None) -> dict | None:
    """The known culprit of this kind that the most evidence points at (every entry it gives must
    hold: headers, signs, release size, delay), or None."""
    have: dict[str, list[str]] = {}
    for k, v in headers or []:
        have.setdefault(k.lower(), []).append(v)
    best, best_score = None, -1
    for c in culprits if culprits is not None else load_culprits():
        if c["cause"] != kind:
            continue
        match = c.get("match", {})
        if not all(any(re.search(pat, v, re.I) for v in have.get(name.lower(), [])) for name, pat in match.items()):
            continue
        if not set(c.get("signs", ())) <= set(signs) or set(c.get("unless", ())) & set(signs):
            continue
        if "sizes" in c and size not in c["sizes"]:
            continue
        if "delay_ms" in c and not (delay_ms is not None and c["delay_ms"][0] <= delay_ms <= c["delay_ms"][1]):
            continue
        score = 2 * len(match) + len(c.get("signs", ())) + ("sizes" in c) + ("delay_ms" in c)
        if score > best_score:
            best, best_score = c, score
    return best


def _bad(r: dict) -> bool:
    return r["verdict"] in ("fail", "warn")


def _matches(cid: str, prefixes) -> bool:
    return any(cid == p or (p.endswith(".") and cid.startswith(p)) for p in prefixes)


def diagnose(results: list[dict], headers: list[list[str]] | None = None, evidence: Evidence | None = None,
             table: dict | None = None) -> list[Cause]:
    """The distinct causes behind one target's failing findings (``results`` are its result
    dicts; ``headers`` the main response's, or ``evidence`` all a run shows). Sets
    ``r["cause"]`` on each explained result."""
    ev = evidence or Evidence()
    if headers and not ev.headers:
        ev.headers = list(headers)
    table = table or load_table()
    kinds, culprits = table["kind"], table["culprit"]
    by = {r["check"]: r for r in results}
    causes: list[Cause] = []

    # What the run shows beside the findings.
    signs = signs_of(ev)
    comp = by.get("delivery.compressed")
    cmet = (comp or {}).get("metrics") or {}
    coding = cmet.get("content_encoding") or "compression"
    if cmet.get("content_encoding") not in (None, "identity"):
        signs.add("compressed")
    chain = by.get("delivery.chain")
    chain_met = (chain or {}).get("metrics") or {}
    chain_bad = bool(chain and chain["verdict"] == "fail")
    chain_identity_bad = chain_bad and chain_met.get("ok") is False
    chain_compressed_bad = chain_bad and chain_met.get("compressed_ok") is False
    if (comp and _bad(comp) and cmet.get("held_only_compressed")) or (chain_bad and not chain_identity_bad
                                                                       and chain_compressed_bad):
        signs.add("compressed-only")
    size = release_size(ev.release_sizes)
    delay = fixed_delay(chain_met.get("held_ms")) if chain_identity_bad else None
    notes = [f"{k}: {v}" for k, v in ev.headers if k.lower() in HINT_HEADERS]
    proxied = bool({"lowercase-headers"} & signs or ev.reference or
                   any(k.lower() in ("via", "x-varnish", "x-cache", "cf-ray") for k, _ in ev.headers))

    def chain_note(compressed: bool) -> str:
        pre = "compressed_" if compressed else ""
        most = chain_met.get(f"{pre}max_held_ms")
        med = chain_met.get(f"{pre}median_held_ms")
        what = "asked as a browser asks (compressed)" if compressed else "identity"
        return (f"delivery.chain, {what}: each event held median {ms((med or 0) / 1000)}, "
                f"at most {ms((most or 0) / 1000)}"
                if most is not None else "delivery.chain failed")

    def add(kind: str, evidence_check: str, explains: list[str], *, certain_on: str | None = None,
            extra: str = "", **fmt) -> Cause:
        spec = kinds[kind]
        known = culprit_for(kind, ev.headers, culprits, signs=signs, size=size, delay_ms=delay)
        # What the guess rests on: the matched headers, signs, release size, delay.
        why = []
        if known:
            pats = {k.lower(): p for k, p in known.get("match", {}).items()}
            why += [f"{k}: {v}" for k, v in ev.headers if k.lower() in pats and re.search(pats[k.lower()], v, re.I)]
            why += [sign_words(s, ev, coding) for s in known.get("signs", ())]
            if "sizes" in known:
                why.append(f"the body was released in {size}-byte pieces")
            if "delay_ms" in known:
                why.append(f"every event held about {ms(delay / 1000)}")
        certain = certain_on is not None
        ref = ev.reference or "--reference"
        if known and certain:
            named = (f"{' and '.join(why)} name{'s' if len(why) == 1 else ''} the hop in it"
                     if known.get("match") else f"which program in it is a guess from {'; '.join(why)}")
            hop = (f"{known['hop']}: certain: the hold is measured between the origin ({ref}) and the client "
                   f"({certain_on}); {named}")
        elif known:
            hop = f"likely {known['hop']} (a guess from {'; '.join(why)}); {CERTAIN}"
        elif certain:
            hop = (f"certain: the chain between the origin ({ref}) and the client ({certain_on}); no header or sign "
                   "names the program in it" + (f" ({', '.join(notes)})" if notes else ""))
        else:
            hop = ("not known from the headers" + (f" ({', '.join(notes)})" if notes else "") +
                   f": the app's server or any proxy or CDN in front of it; {CERTAIN}")
        r = by[evidence_check]
        text = f"{evidence_check}: {r['observed'][:400]}"
        if extra:
            text += f"; {extra}"
        cause = Cause(spec["what"].format(coding=coding, delay_ms=f"{delay:.0f}" if delay else "?", **fmt), hop,
                      text, known["fix"] if known else spec["fix"], [], kind,
                      "certain" if certain else "guess", known["source"] if known else "",
                      list(known.get("see", ())) if known else [])
        index = len(causes)
        for x in results:
            if x["check"] in explains and _bad(x) and x.get("cause", index) == index:
                x["cause"] = index
                cause.explains.append(x["check"])
        causes.append(cause)
        return cause

    if comp and comp["verdict"] == "fail" and (cmet.get("coding_fault") or cmet.get("units_lost")):
        # Content lost under a coding: said first, so the clients that lost it point here.
        losers = [r for r in results if _matches(r["check"], ("client.", "browser.")) and _bad(r)
                  and (r.get("metrics") or {}).get("units_lost")]
        told = "; ".join(f"{r['check']}: {_lost_words(r)}" for r in losers)
        add("lost", "delivery.compressed", ["delivery.compressed"] + [r["check"] for r in losers],
            extra=f"what each client got in this run: {told}" if told else "",
            fault=FAULT_WORDS.get(cmet.get("coding_fault"), "decodes to fewer units than the identity request delivered"))

    main = [by[c] for c in ("delivery.first-byte", "delivery.progressive") if c in by]
    held = [r for r in main if r["verdict"] == "fail"]
    chain_explained = False
    if held:
        text = " ".join(r["observed"] for r in held)
        kind = ("buffer" if "buffer flushed when full" in text or "buffers bytes" in text or size else
                "event-tail" if "cut open" in text else "held")
        h2 = by.get("delivery.h2")
        extra = []
        if size:
            extra.append(f"the body was released in {size}-byte pieces")
        if "close-delimited" in signs and proxied:
            extra.append("the body is close-delimited behind a proxy: an HTTP/1.0-style upstream")
        if ev.tls and h2 and h2["verdict"] == "pass":
            kind = "h1-only"
            extra.append(f"delivery.h2: {h2['observed'][:200]}")
        train = [r["check"] for r in results if getattr(load_all().get(r["check"]), "held_by_a_hold", False)]
        if chain_identity_bad:
            train.append("delivery.chain")
            chain_explained = True
        add(kind, held[-1]["check"], train, certain_on=chain_note(False) if chain_identity_bad else None,
            extra="; ".join(extra))
    if chain_identity_bad and not chain_explained:
        # Held by the chain though the main checks passed: a delay under their margins, or a hold
        # only the comparison with the origin shows.
        add("delay" if delay is not None else "held", "delivery.chain", ["delivery.chain"],
            certain_on=chain_note(False))
        chain_explained = True
    if comp and _bad(comp) and cmet.get("held_only_compressed"):
        train = ["delivery.compressed"] + [r["check"] for r in results if _matches(r["check"], ("client.", "browser."))]
        certain = None
        if chain_compressed_bad:
            train.append("delivery.chain")
            certain = chain_note(True)
        if "cut open" in comp["observed"]:
            add("event-tail", "delivery.compressed", train, certain_on=certain).cause += \
                f" (under {coding} only; the identity request streams)"
        else:
            add("compression", "delivery.compressed", train, certain_on=certain)
        chain_explained = chain_explained or chain_compressed_bad
    if chain_compressed_bad and not chain_explained:
        add("compression", "delivery.chain", ["delivery.chain"], certain_on=chain_note(True))
    elif chain_identity_bad and chain_compressed_bad and not any(c.kind in ("compression", "event-tail") for c in causes):
        # Both held, compressed longer (at most) by more than the limit: compression holds on top.
        more = (chain_met.get("compressed_max_held_ms") or 0) - (chain_met.get("max_held_ms") or 0)
        if more > (chain_met.get("limit_ms") or float("inf")):
            add("compression", "delivery.chain", ["delivery.chain"], certain_on=chain_note(True)).cause = (
                f"compression ({coding}) holds each event a further {more:.0f} ms beyond the identity request's hold")
    selfdel = by.get("framing.self-delimited")
    if selfdel and _bad(selfdel) and proxied:
        origin_too = ev.origin_framing == "close"
        add("http10-upstream", "framing.self-delimited", ["framing.self-delimited"],
            certain_on=("the origin, recorded directly, answers close-delimited too" if origin_too else None))
    head = by.get("delivery.head-early")
    if head and _bad(head):
        hold = head_hold(causes, head, main_held=bool(held))
        if hold is not None:
            # One hold, one cause: the head came with the held body, so it was held by the same hop.
            head["cause"] = causes.index(hold)
            hold.explains.append("delivery.head-early")
            hold.evidence += ("; delivery.head-early: the head came in the same read as the held body, so it was "
                              "held with it (not a cause of its own)")
        else:
            add("head", "delivery.head-early", ["delivery.head-early"])
    for r in results:   # an engine held what the wire delivered on time: the engine is the hop
        met = r.get("metrics") or {}
        if r["check"].startswith("browser.progressive-render") and _bad(r) and met.get("engine_hold") \
                and "cause" not in r:
            r["cause"] = len(causes)
            causes.append(Cause(f"{kinds['engine']['what']}: {met.get('engine_cause', '')}",
                                f"{met.get('engine', 'the browser engine')} (the browser itself: the raw recorder got "
                                "the same stream on time)", f"{r['check']}: {r['observed'][-500:]}",
                                met.get("engine_fix") or kinds["engine"]["fix"], [r["check"]], "engine", "certain",
                                met.get("engine_source") or ""))
    return causes


FAULT_WORDS = {"trailing": "ends early and uncoded bytes follow it", "corrupt": "breaks (a byte no decoder accepts)",
               "truncated": "is cut before its end"}


def _lost_words(r: dict) -> str:
    m = r.get("metrics") or {}
    raised = "raised after " if r["verdict"] in ("fail", "warn") and "raised" in r.get("observed", "") else ""
    return f"{raised}{m.get('units_caller')} of {m.get('units_wire')} {m.get('units_what', 'units')} ({m.get('units_lost')} lost)"


HOLDS = ("held", "buffer", "h1-only", "event-tail", "delay", "compression")


def head_hold(causes: list[Cause], head: dict, main_held: bool) -> Cause | None:
    """The hold that also held the head (``delivery.head-early``), or None when the head alone was
    late: the identity request's head with a hold of the main GET (first-byte or progressive
    failed), the browser-style request's with a hold under compression (or the main hold)."""
    held_for = (head.get("metrics") or {}).get("head_held_for")
    if isinstance(held_for, str):
        held_for = [n for n in held_for.split(", ") if n]
    if held_for is None:   # an older result: the requests are named in its text
        held_for = [n for n in ("identity", "browser-style") if f"for the {n}" in head.get("observed", "")
                    or f", {n}" in head.get("observed", "")]
    main = next((c for c in causes if c.kind in HOLDS and c.kind != "compression"), None)
    compressed = next((c for c in causes if c.kind in ("compression", "event-tail")), None)
    for name in held_for:
        if name == "identity" and not (main_held and main):
            return None
        if name == "browser-style" and not ((main_held and main) or compressed):
            return None
    if not held_for:
        return None
    return main if (main_held and main) else compressed
