"""One cause, said once: from a target's findings to ``diagnosis`` (DESIGN.md, results.json).

Several findings often have one cause: a stream held to the end fails first-byte, progressive,
cadence, concurrent, HTTP/1.0 and every client at once. ``diagnose`` names each distinct cause
once, as ``{"cause", "hop", "evidence", "fix", "explains"}``, and ``explains`` lists the checks
it accounts for, which then point at it (``results[i]["cause"]``) instead of repeating it.

Which hop holds is a guess from the response's headers (``Server``, ``Via``, ``X-Varnish``,
``cf-ray``…) against the known culprits kept as data (``conformance/data/culprits.toml``, each
with its source); a guess is worded as one, and says what would make it certain.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CULPRITS = Path(__file__).parent / "data" / "culprits.toml"
CERTAIN = "--reference ORIGIN_URL (the same request to the origin behind the chain) or the probe would make it certain"

# What each kind of cause is, and the fix when no known hop matches.
KINDS = {
    "compression": ("the stream is held only under compression ({coding}); the identity request streams",
                    "flush the compressor after every write (or leave streaming media types out of compression)"),
    "held": ("the stream is held before it reaches the client, with or without compression",
             "let every hop pass the body on as it comes (no response buffering, no whole-body middleware)"),
    "buffer": ("a hop releases the stream in buffer-sized pieces (a buffer flushed only when full)",
               "turn the hop's response buffering off, or flush it after every write"),
    "event-tail": ("a hop holds the end of every event until the next one comes",
                   "flush completely after every event (a compressor's Z_SYNC_FLUSH, a proxy's flush per write)"),
    "head": ("the response head is held until the first body byte",
             "send the head when the response starts (flush headers, or write an SSE comment before the first event)"),
}
# The checks a hold of the main stream fails in its train.
TRAIN = ("delivery.first-byte", "delivery.progressive", "delivery.cadence", "delivery.concurrent", "delivery.http10",
         "delivery.compressed", "delivery.h2", "client.", "browser.")


@dataclass
class Cause:
    cause: str
    hop: str
    evidence: str
    fix: str
    explains: list[str] = field(default_factory=list)
    kind: str = ""

    def to_dict(self) -> dict:
        return {"cause": self.cause, "hop": self.hop, "evidence": self.evidence, "fix": self.fix,
                "explains": self.explains, "kind": self.kind}


def load_culprits(path: Path = CULPRITS) -> list[dict]:
    return tomllib.loads(path.read_text())["culprit"]


def culprit_for(kind: str, headers: list[list[str]], culprits: list[dict] | None = None) -> dict | None:
    """The first known culprit of this kind whose header patterns all match the response."""
    have: dict[str, list[str]] = {}
    for k, v in headers or []:
        have.setdefault(k.lower(), []).append(v)
    for c in culprits if culprits is not None else load_culprits():
        if c["cause"] != kind:
            continue
        if all(any(re.search(pat, v, re.I) for v in have.get(name.lower(), [])) for name, pat in c["match"].items()):
            return c
    return None


def _bad(r: dict) -> bool:
    return r["verdict"] in ("fail", "warn")


def _matches(cid: str, prefixes) -> bool:
    return any(cid == p or (p.endswith(".") and cid.startswith(p)) for p in prefixes)


def diagnose(results: list[dict], headers: list[list[str]] | None = None) -> list[Cause]:
    """The distinct causes behind one target's failing findings (``results`` are its result
    dicts; ``headers`` the main response's). Sets ``r["cause"]`` on each explained result."""
    by = {r["check"]: r for r in results}
    causes: list[Cause] = []

    def add(kind: str, evidence_check: str, explains: list[str], **fmt) -> None:
        what, generic_fix = KINDS[kind]
        known = culprit_for(kind, headers or [])
        header_note = ", ".join(f"{k}: {v}" for k, v in (headers or []) if k.lower() in
                                ("server", "via", "x-varnish", "x-cache", "cf-ray", "x-powered-by"))
        if known:
            hop = f"likely {known['hop']} (from {header_note}; source: {known['source']}); {CERTAIN}"
            fix = known["fix"]
        else:
            hop = ("not known from the headers" + (f" ({header_note})" if header_note else "") +
                   f": the app's server or any proxy or CDN in front of it; {CERTAIN}")
            fix = generic_fix
        r = by[evidence_check]
        cause = Cause(what.format(**fmt), hop, f"{evidence_check}: {r['observed'][:400]}", fix, [], kind)
        for x in results:
            if x["check"] in explains and _bad(x) and x.get("cause", len(causes)) == len(causes):
                x["cause"] = len(causes)
                cause.explains.append(x["check"])
        causes.append(cause)

    main = [by[c] for c in ("delivery.first-byte", "delivery.progressive") if c in by]
    held = [r for r in main if r["verdict"] == "fail"]
    if held:
        text = " ".join(r["observed"] for r in held)
        kind = ("buffer" if "buffer flushed when full" in text or "buffers bytes" in text else
                "event-tail" if "cut open" in text else "held")
        train = [r["check"] for r in results if _matches(r["check"], TRAIN)]
        add(kind, held[-1]["check"], train)
    comp = by.get("delivery.compressed")
    if comp and _bad(comp) and (comp.get("metrics") or {}).get("held_only_compressed"):
        coding = (comp.get("metrics") or {}).get("content_encoding", "compression")
        train = ["delivery.compressed"] + [r["check"] for r in results if _matches(r["check"], ("client.", "browser."))]
        if "cut open" in comp["observed"]:
            add("event-tail", "delivery.compressed", train)
            causes[-1].cause += f" (under {coding} only; the identity request streams)"
        else:
            add("compression", "delivery.compressed", train, coding=coding)
    head = by.get("delivery.head-early")
    if head and _bad(head):
        add("head", "delivery.head-early", ["delivery.head-early"])
    return causes
