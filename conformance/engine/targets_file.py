"""Targets files: TOML, one ``[[target]]`` table per target (format in docs/design.md).

Errors name the file, the line and the key, because these files are edited by hand and read
by CI long after they were written.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from conformance.analysis.target import Target, TargetError, build_target
from conformance.engine.apps import AppError, build_targets
from conformance.scenarios.chain import with_reference
from conformance.wire.recorder import BadURL, parse_url

KEYS = {"id": str, "url": str, "profile": str, "interval": (int, float), "count": int, "expect_bursts": int,
        "headers": dict, "insecure": bool, "large_url": str, "concurrent_streams": int,
        "watch": (int, float), "reference": str,
        # the user's app, started by the suite (conformance/engine/apps.py); then url is not given
        "app": str, "app_path": (str, list), "servers": (str, list), "behind": (str, list),
        # the request (conformance/wire/request.py): json is JSON text or a TOML table/array sent as JSON
        "method": str, "body": str, "body_file": str, "json": (str, dict, list)}


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
                what = "a string or a list of strings" if KEYS[key] == (str, list) else \
                    getattr(KEYS[key], '__name__', 'a number')
                raise bad(key, f"expected {what}, got {value!r}")
        if "app" in t and "url" in t:
            raise bad("url", "give url or app, not both")
        for key in ("app_path", "servers", "behind"):
            if key in t and "app" not in t:
                raise bad(key, "only with app = \"MODULE:ATTR\"")
            if isinstance(t.get(key), list) and not all(isinstance(v, str) for v in t[key]):
                raise bad(key, "expected a string or a list of strings")
        for key in () if "app" in t else ("id", "url"):   # an app's targets are named after it unless id says
            if key not in t:
                raise bad(key, "missing")
        for key in ("url", "large_url", "reference"):
            try:
                if key in t and not (key == "large_url" and "app" in t and t[key].startswith("/")):   # the app's path
                    parse_url(t[key])
            except BadURL as e:
                raise bad(key, str(e)) from None
        headers = list(defaults.get("headers", [])) + [(str(k), str(v)) for k, v in t.get("headers", {}).items()]
        method, body = _request(t, path, bad, headers)
        # the values a target is judged by: checked by build_target, its messages naming this table and key
        where = (lambda key, i=i: f"{path}:{_line_of(text, i, key)}: target {i + 1}, key {key!r}:")
        given = {k: t[k] for k in ("profile", "interval", "count", "expect_bursts", "concurrent_streams") if k in t}
        given.setdefault("profile", None)   # None: from the response
        common = dict(given, headers=headers, insecure=t.get("insecure", defaults.get("insecure", False)),
                      large_url=t.get("large_url"), watch=t.get("watch", defaults.get("watch")), method=method, body=body)
        try:
            if "app" in t:   # one target per (server, path, front), named after id
                as_list = (lambda v: [v] if isinstance(v, str) else list(v or []))
                try:
                    out += build_targets([t["app"]], as_list(t.get("app_path")), as_list(t.get("servers")),
                                         as_list(t.get("behind")), name=t.get("id"), where=where, **common)
                except AppError as e:
                    raise bad("app", str(e).removeprefix(f"--app {t['app']}: ")) from None
                continue
            out.append(build_target(t["id"], t["url"], where, **common))
        except TargetError as e:
            raise pytest.UsageError(str(e)) from None
        if "reference" in t:   # delivery.chain (conformance/scenarios/chain.py)
            out[-1] = with_reference(out[-1], t["reference"])
    return out


def _request(t: dict, path: Path, bad, headers: list[tuple[str, str]]) -> tuple[str, bytes | None]:
    """A table's request: ``method``, and one of ``body`` (text), ``body_file`` (a file, relative
    to the targets file) or ``json`` (with Content-Type and Accept: application/json added to
    ``headers`` unless given). A body without ``method`` is a POST, as curl's ``-d``."""
    import json as _json

    from conformance.wire.request import RequestError, check_method, json_body
    given = [k for k in ("body", "body_file", "json") if k in t]
    if len(given) > 1:
        raise bad(given[1], f"give one of body, body_file, json (not {' and '.join(given)})")
    body = None
    if "body" in t:
        body = t["body"].encode("utf-8")
    elif "body_file" in t:
        try:
            body = (path.parent / t["body_file"]).expanduser().read_bytes()
        except OSError as e:
            raise bad("body_file", f"cannot read it: {e.strerror or e}") from None
    elif "json" in t:
        try:
            body = json_body(t["json"].encode("utf-8")) if isinstance(t["json"], str) else \
                _json.dumps(t["json"]).encode("utf-8")
        except RequestError as e:
            raise bad("json", str(e).removeprefix("--json: ")) from None
        names = {k.lower() for k, _ in headers}
        headers += [(k, v) for k, v in (("Content-Type", "application/json"), ("Accept", "application/json"))
                    if k.lower() not in names]
    try:
        method = check_method(t["method"], "method") if "method" in t else ("POST" if body is not None else "GET")
    except RequestError as e:
        raise bad("method", str(e)) from None
    return method, body
