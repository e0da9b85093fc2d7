"""Targets files: TOML, one ``[[target]]`` table per target (format in DESIGN.md).

Errors name the file, the line and the key, because these files are edited by hand and read
by CI long after they were written.
"""
from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import pytest

from conformance.recorder import BadURL, parse_url
from conformance.target import MAX_STREAMS, PROFILES, Target

KEYS = {"id": str, "url": str, "profile": str, "interval": (int, float), "count": int, "expect_bursts": int,
        "headers": dict, "insecure": bool, "large_url": str, "concurrent_streams": int,
        "watch": (int, float), "reference": str}


def _line_of(text: str, index: int, key: str | None) -> int:
    """The line of the index-th [[target]] table, or of ``key`` inside it."""
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines) if re.match(r"\s*\[\[\s*target\s*\]\]", line)]
    if index >= len(starts):
        return 1
    end = starts[index + 1] if index + 1 < len(starts) else len(lines)
    if key:
        for n in range(starts[index], end):
            if re.match(rf"\s*{re.escape(key)}\s*=", lines[n]):
                return n + 1
    return starts[index] + 1


def load(path: Path, defaults: dict | None = None) -> list[Target]:
    defaults = defaults or {}
    try:
        text = path.read_text()
    except OSError as e:
        raise pytest.UsageError(f"--targets-file {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise pytest.UsageError(f"{path}: {e}") from None
    tables = data.get("target")
    if not isinstance(tables, list) or not tables:
        raise pytest.UsageError(f"{path}: no [[target]] tables")
    out = []
    for i, t in enumerate(tables):
        def bad(key, why):
            return pytest.UsageError(f"{path}:{_line_of(text, i, key)}: target {i + 1}, key {key!r}: {why}")
        for key, value in t.items():
            if key not in KEYS:
                raise bad(key, f"unknown key; known: {', '.join(KEYS)}")
            if not isinstance(value, KEYS[key]) or isinstance(value, bool) and KEYS[key] is not bool:
                raise bad(key, f"expected {getattr(KEYS[key], '__name__', 'a number')}, got {value!r}")
        for key in ("id", "url"):
            if key not in t:
                raise bad(key, "missing")
        for key in ("url", "large_url", "reference"):
            try:
                if key in t:
                    parse_url(t[key])
            except BadURL as e:
                raise bad(key, str(e)) from None
        profile = t.get("profile")   # None: from the response
        if profile is not None and profile not in PROFILES:
            raise bad("profile", f"one of {', '.join(PROFILES)}")
        interval = t.get("interval", 1.0 if profile == "countdown" else None)   # None: inferred
        for key, value in (("interval", interval), ("watch", t.get("watch"))):
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise bad(key, "must be a positive number of seconds")
        for key in ("count", "expect_bursts"):
            if key in t and t[key] < 1:
                raise bad(key, "must be at least 1")
        if not 1 <= t.get("concurrent_streams", 1) <= MAX_STREAMS:
            raise bad("concurrent_streams", f"must be 1 to {MAX_STREAMS}")
        headers = list(defaults.get("headers", [])) + [(str(k), str(v)) for k, v in t.get("headers", {}).items()]
        out.append(Target(t["id"], t["url"], profile, None if interval is None else float(interval), t.get("count"),
                          t.get("expect_bursts"), headers, t.get("insecure", defaults.get("insecure", False)),
                          large_url=t.get("large_url"), watch=t.get("watch", defaults.get("watch")),
                          **{k: t[k] for k in ("concurrent_streams",) if k in t}))
        if "reference" in t:   # delivery.chain (conformance/chain.py)
            from conformance.chain import set_reference
            set_reference(out[-1], t["reference"])
    return out
