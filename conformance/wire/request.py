"""The request a target is asked with: method, body and headers (``-X``, ``-d``, ``--json``, ``-H``,
``--curl``), and what of it a report may show.

Every scenario sends the target's request (``scenarios.Context.exchange``), so a streaming
endpoint that answers ``POST /v1/chat/completions`` is judged as its clients call it. A curl
command line, as pasted from an API's documentation, is read with ``shlex`` (POSIX shell words)
and mapped option by option (``parse_curl``); an option that would change the request in a way
the suite cannot reproduce is a usage error naming it, never silently dropped.

Secrets stay out of reports: header values given by the user are redacted (``recording.redact``),
``-u`` credentials become an ``Authorization`` header (redacted as such), and the body is kept as
its size, SHA-256 and first ``BODY_HEAD`` bytes with the values of secret-named JSON keys (and
form fields) replaced (``body_summary``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from conformance.wire.recording import REDACTED

# RFC 9110 §9.2.1: "the GET, HEAD, OPTIONS, and TRACE methods are defined to be safe".
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
BODY_HEAD = 200   # bytes of the body a report shows (after redaction)
# A JSON key or form field naming a secret: its value is never written to a report.
SECRET_KEY = re.compile(r"key|token|secret|password|passwd|authorization|credential", re.I)
METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")   # RFC 9110 §9.1: method = token
# Header names the suite itself derives (from --json, -d): their values are not the user's secrets.
DERIVED_HEADERS = {"content-type", "accept"}


class RequestError(ValueError):
    """The request options (or the curl command) cannot be turned into a request."""


@dataclass
class Request:
    """What every scenario of a target sends (beyond the suite's own headers)."""
    method: str = "GET"
    body: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    # from --curl only
    url: str | None = None
    insecure: bool = False
    follow_redirects: bool = False
    secret_names: list[str] = field(default_factory=list)   # header names whose values are redacted

    @property
    def safe(self) -> bool:
        return is_safe(self.method)


def is_safe(method: str) -> bool:
    """RFC 9110 §9.2.1: GET, HEAD, OPTIONS and TRACE are safe; anything else may change state."""
    return method.upper() in SAFE_METHODS


def check_method(method: str, option: str = "--method") -> str:
    if not METHOD.match(method or ""):
        raise RequestError(f"{option} {method!r}: not an HTTP method (a token such as GET or POST)")
    return method


def read_data(value: str, option: str, strip_newlines: bool = False) -> bytes:
    """A body option's value: ``@file`` reads the file (``@-``: standard input), else the text
    itself (UTF-8). curl's ``-d @file`` drops CR and LF from the file (``strip_newlines``)."""
    if value.startswith("@"):
        name = value[1:]
        try:
            if name == "-":
                import sys
                data = sys.stdin.buffer.read()
            else:
                data = Path(name).expanduser().read_bytes()
        except OSError as e:
            raise RequestError(f"{option} {value}: cannot read {name}: {e.strerror or e}") from None
        return data.replace(b"\r", b"").replace(b"\n", b"") if strip_newlines else data
    return value.encode("utf-8")


def _set_header(headers: list[tuple[str, str]], name: str, value: str, replace: bool = True) -> None:
    if any(k.lower() == name.lower() for k, _ in headers):
        if not replace:
            return
        headers[:] = [(k, v) for k, v in headers if k.lower() != name.lower()]
    headers.append((name, value))


def json_body(data: bytes, option: str = "--json") -> bytes:
    """``--json``'s body, which must be JSON (curl sends it unchecked; a typo here costs a paid
    request that can only fail, so it is refused before anything is sent)."""
    try:
        json.loads(data)
    except ValueError as e:
        raise RequestError(f"{option}: not JSON ({e})") from None
    return data


def from_options(method: str | None, data: list[str], json_data: list[str], headers: list[tuple[str, str]],
                 base: Request | None = None) -> Request:
    """The request from ``--method``, ``--data``, ``--json`` and the ``--header`` list, over
    ``base`` (a ``--curl`` request; the options given beside it win)."""
    req = base or Request()
    req.headers = list(req.headers)
    for k, v in headers:
        _set_header(req.headers, k, v)
    if data and json_data:
        raise RequestError("give --data or --json, not both")
    if data:
        req.body = b"&".join(read_data(d, "--data") for d in data)
        _set_header(req.headers, "Content-Type", "application/x-www-form-urlencoded", replace=False)
    if json_data:
        req.body = json_body(b"".join(read_data(d, "--json") for d in json_data))
        _set_header(req.headers, "Content-Type", "application/json", replace=False)
        _set_header(req.headers, "Accept", "application/json", replace=False)
    if method:
        req.method = check_method(method)   # as given: methods are case-sensitive (RFC 9110 §9.1)
    elif req.body is not None and req.method in ("GET", "HEAD"):
        req.method = "POST"   # as curl: a body without -X is a POST
    return req


# --- curl ----------------------------------------------------------------------------------------
# curl options that change only what curl prints or how it buffers its own output: accepted, ignored.
CURL_OUTPUT_ONLY = {"-N", "--no-buffer", "-s", "--silent", "-S", "--show-error", "-i", "--include", "-v",
                    "--verbose", "-f", "--fail", "--fail-with-body", "--no-progress-meter", "-#", "--progress-bar",
                    "--http1.1", "--raw"}
CURL_OUTPUT_ONLY_VALUE = {"-o", "--output", "-w", "--write-out", "--trace", "--trace-ascii", "--stderr", "-m",
                          "--max-time", "--connect-timeout"}
CURL_DATA = {"-d": "data", "--data": "data", "--data-ascii": "data", "--data-raw": "raw", "--data-binary": "binary",
             "--json": "json"}
CURL_VALUE = {"-X", "--request", "-H", "--header", "-u", "--user", "-A", "--user-agent", "-e", "--referer",
              "-b", "--cookie", "--url"} | set(CURL_DATA) | CURL_OUTPUT_ONLY_VALUE
CURL_SHORT_FLAGS = {"N", "s", "S", "i", "v", "f", "k", "L", "#"}
CURL_MAPPED = ("URL, -X/--request, -H/--header, -d/--data/--data-raw/--data-binary/--data-ascii, --json, "
               "-u/--user, -A/--user-agent, -e/--referer, -b/--cookie, -k/--insecure, -L/--location, --compressed; "
               "ignored: -N -s -S -i -v -f -o -w -m --http1.1")


def _curl_words(command: str) -> list[str]:
    """The shell words of a pasted command: line continuations (``\\`` + newline, as API docs
    print them) joined, environment variables that are set expanded (``$OPENAI_API_KEY``, as the
    docs' commands name keys; one that is not set stays as written), then split as a POSIX shell
    would (``shlex``)."""
    command = os.path.expandvars(re.sub(r"\\\r?\n", " ", command.strip()))
    try:
        words = shlex.split(command, posix=True)
    except ValueError as e:
        raise RequestError(f"--curl: cannot read the command line: {e}") from None
    if words and Path(words[0]).name == "curl":
        words = words[1:]
    return words


def _expand_short(word: str) -> list[str]:
    """``-sN`` → ``-s -N``; ``-XPOST`` → ``-X POST``; ``-H'A: b'`` → ``-H 'A: b'``."""
    if word.startswith("--") or len(word) <= 2 or not word.startswith("-"):
        return [word]
    out = []
    for i, c in enumerate(word[1:], 1):
        if c in CURL_SHORT_FLAGS:
            out.append("-" + c)
            continue
        opt = "-" + c
        if opt in CURL_VALUE:
            rest = word[i + 1:]
            return out + [opt] + ([rest] if rest else [])
        out.append(opt)   # unknown: reported as such below
    return out


def parse_curl(command: str) -> Request:
    """A curl command line as pasted (with or without the leading ``curl``) → ``Request``.
    Raises ``RequestError`` naming any option it cannot map (see ``CURL_MAPPED``)."""
    words = []
    for w in _curl_words(command):
        words += _expand_short(w)
    req = Request()
    datas: list[bytes] = []
    json_given = False
    explicit_method = None
    i = 0
    while i < len(words):
        w = words[i]
        name, eq, inline = w.partition("=") if w.startswith("--") else (w, "", "")
        if not w.startswith("-") or w == "-":
            if req.url is not None:
                raise RequestError(f"--curl: a second URL {w!r}: give one URL per --curl")
            req.url = w
            i += 1
            continue
        if name in CURL_VALUE:
            if eq:
                value = inline
            else:
                if i + 1 >= len(words):
                    raise RequestError(f"--curl: curl's option {name} needs a value")
                value = words[i + 1]
                i += 1
        else:
            value = None
        i += 1
        if name in CURL_OUTPUT_ONLY or name in CURL_OUTPUT_ONLY_VALUE:
            continue
        if name in ("-k", "--insecure"):
            req.insecure = True
        elif name in ("-L", "--location"):
            req.follow_redirects = True
        elif name == "--compressed":
            # curl asks for gzip/deflate/br and decodes; the suite asks for identity on its main
            # recording and for what browsers ask on delivery.compressed, so both are judged.
            pass
        elif name == "--url":
            req.url = value
        elif name in ("-X", "--request"):
            explicit_method = check_method(value, "--curl -X")
        elif name in ("-H", "--header"):
            hname, sep, hvalue = value.partition(":")
            if not sep or not hname.strip():
                if value.rstrip().endswith(";"):   # curl's "Name;" sends an empty header
                    hname, hvalue = value.rstrip()[:-1], ""
                else:
                    raise RequestError(f"--curl: -H {value!r}: expected 'Name: value'")
            if hvalue.strip() or sep:
                _set_header(req.headers, hname.strip(), hvalue.strip())
                if hname.strip().lower() not in DERIVED_HEADERS:
                    req.secret_names.append(hname.strip())
        elif name in ("-u", "--user"):
            creds = value if ":" in value else value + ":"
            _set_header(req.headers, "Authorization", "Basic " + base64.b64encode(creds.encode()).decode())
        elif name in ("-A", "--user-agent"):
            _set_header(req.headers, "User-Agent", value)
        elif name in ("-e", "--referer"):
            _set_header(req.headers, "Referer", value)
        elif name in ("-b", "--cookie"):
            if "=" not in value:
                raise RequestError(f"--curl: -b {value!r} names a cookie file; give the cookie as -b 'name=value'")
            _set_header(req.headers, "Cookie", value)
            req.secret_names.append("Cookie")
        elif name in CURL_DATA:
            kind = CURL_DATA[name]
            if kind == "raw":
                datas.append(value.encode("utf-8"))
            else:
                datas.append(read_data(value, f"--curl {name}", strip_newlines=kind == "data"))
            if kind == "json":
                json_given = True
        else:
            raise RequestError(f"--curl: curl's option {name} cannot be mapped to the suite's request "
                               f"(mapped: {CURL_MAPPED})")
    if req.url is None:
        raise RequestError("--curl: no URL in the command")
    if datas:
        req.body = (b"" if json_given else b"&").join(datas)
        if json_given:
            req.body = json_body(req.body, "--curl --json")
            _set_header(req.headers, "Content-Type", "application/json", replace=False)
            _set_header(req.headers, "Accept", "application/json", replace=False)
        else:
            _set_header(req.headers, "Content-Type", "application/x-www-form-urlencoded", replace=False)
        req.method = "POST"
    if explicit_method:
        req.method = explicit_method
    return req


# --- what a report shows -------------------------------------------------------------------------

def _redact_json(value):
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) and not isinstance(v, (dict, list)) else _redact_json(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


def redact_body(body: bytes, content_type: str = "") -> bytes:
    """The body with the values of secret-named keys replaced: JSON object keys at any depth,
    form fields (``application/x-www-form-urlencoded``); other bodies as they are, less any
    ``"key": "value"`` pair that looks like a secret's."""
    try:
        return json.dumps(_redact_json(json.loads(body)), ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    if "x-www-form-urlencoded" in content_type.lower():
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
            return urlencode([(k, REDACTED if SECRET_KEY.search(k) else v) for k, v in pairs], safe="<>").encode()
        except (ValueError, UnicodeDecodeError):
            pass
    # Not parseable: any quoted secret-named key's string value (JSON cut short, say)
    return re.sub(rb'("[^"]*(?:key|token|secret|password|passwd|authorization|credential)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"?',
                  lambda m: m.group(1) + b'"' + REDACTED.encode() + b'"', body, flags=re.I)


def body_summary(body: bytes | None, content_type: str = "") -> dict:
    """``body_bytes``, ``body_sha256`` and ``body_head`` (the first ``BODY_HEAD`` bytes of the
    redacted body, as text) for results.json; {} without a body."""
    if body is None:
        return {}
    head = redact_body(body, content_type)[:BODY_HEAD].decode("utf-8", "replace")
    return {"body_bytes": len(body), "body_sha256": hashlib.sha256(body).hexdigest(), "body_head": head}
