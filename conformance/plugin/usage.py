"""``python -m conformance --help``: the suite's own usage, not pytest's 400 lines.

Generated from the plugin's own option definitions (``plugin.pytest_addoption`` is called with a
recorder in place of pytest's parser), so an option added there shows up here with its help
text; ``GROUPS`` only sorts them, and an option it does not name is listed under "other", never
left out. The few options the suite shares with pytest and its plugins (``--strict``,
``--timeout``, ``--junitxml``, ``-n``) are described here. ``pytest --help`` is untouched.
"""
from __future__ import annotations

import shutil
import textwrap

from conformance import plugin

# (title, options in the order shown). Options of the plugin not named here go under "other".
GROUPS: list[tuple[str, list[str]]] = [
    ("targets", ["URL", "--target-url", "--target", "--targets-file", "--app", "--app-path", "--server",
                 "--behind", "--reference", "--header", "--insecure", "--follow-redirects"]),
    ("request", ["--curl", "--method", "--data", "--json", "--max-requests", "--plan"]),
    ("timing", ["--profile", "--interval", "--count", "--expect-bursts", "--time-scale", "--timeout", "--watch"]),
    ("checks", ["--check", "--skip-check", "--concurrent-streams", "--large-url", "--large-size"]),
    ("output", ["--report-dir", "--junitxml", "-n", "-v"]),
    ("gate", ["--strict", "--baseline", "--repeat"]),
]

# Options that are not the plugin's own (pytest's, pytest-timeout's, pytest-xdist's), and the
# positional URL: (how it is written, what it does for the suite).
SHARED = {
    "URL": ("URL", "a target, as --target-url (repeatable)"),
    "--strict": ("--strict", "SHOULD-level findings fail the run"),
    "--timeout": ("--timeout SECONDS", "idle timeout per read (default: twice the producer's schedule plus 5 s, "
                                       "at least 10 s)"),
    "--junitxml": ("--junitxml, --junit-xml PATH", "JUnit XML too: a testcase per (target, check)"),
    "-n": ("-n N", "N worker processes (pytest-xdist), a target per worker"),
    "-v": ("-q / -v", "less / more of pytest's own output"),
}

EXIT_CODES = [
    (0, "every check passed (warnings and infos allowed)"),
    (1, "a check failed (with --baseline: a regression against it)"),
    (2, "interrupted (Ctrl-C, SIGTERM); results so far are still written"),
    (3, "the suite itself failed: a judge raised, or a report file was not written (before 1 and 6)"),
    (4, "usage error: a bad option value, URL, check ID or targets file"),
    (5, "no check ran (all deselected, or all skipped)"),
    (6, "a target could not be reached or judged (refused, TLS, no head in time, non-2xx)"),
]

EXAMPLES = [
    ("an LLM endpoint, from the curl command in its docs (POST: at most 3 requests unless --max-requests)",
     "python -m conformance --curl 'curl -N https://api.example.org/v1/chat --json @req.json'"),
    ("a stream you serve, one write a second",
     "python -m conformance https://example.org/countdown/10 --interval 1"),
    ("a CI gate over a targets file, against the last good run",
     "python -m conformance --targets-file targets.toml --baseline good/results.json --repeat 3"),
]


class _Recorder:
    """Stands in for pytest's parser and its groups: keeps what ``addoption`` is given."""

    def __init__(self):
        self.options: dict[str, tuple[tuple[str, ...], dict]] = {}

    def getgroup(self, *args, **kwargs) -> "_Recorder":
        return self

    def addoption(self, *names: str, **attrs) -> None:
        self.options[names[0]] = (names, attrs)

    def __getattr__(self, name):   # addini and the like: not options users type
        return lambda *args, **kwargs: None


def plugin_options() -> dict[str, tuple[tuple[str, ...], dict]]:
    rec = _Recorder()
    plugin.pytest_addoption(rec)
    return rec.options


def _synopsis(names: tuple[str, ...], attrs: dict) -> str:
    if attrs.get("action") in ("store_true", "store_false", "count"):
        arg = ""
    elif attrs.get("choices"):
        arg = " {" + ",".join(map(str, attrs["choices"])) + "}"
    else:
        arg = " " + (attrs.get("metavar") or names[0].lstrip("-").upper().replace("-", "_"))
    return ", ".join(names) + arg


def _help_text(attrs: dict) -> str:
    text = " ".join(str(attrs.get("help") or "").split())
    default = attrs.get("default")
    if "%(default)s" in text:
        text = text.replace("%(default)s", str(default))
    elif default not in (None, False, [], "") and "default" not in text:
        text += f" (default {default})"
    return text


def grouped_options() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every option as (synopsis, help text), in ``GROUPS``' order; the plugin's options that
    ``GROUPS`` does not name come last, under "other". ``--help`` and ``docs/options.md`` read this."""
    options = plugin_options()
    rows: dict[str, tuple[str, str]] = {name: (_synopsis(names, attrs), _help_text(attrs))
                                        for name, (names, attrs) in options.items()}
    rows.update({k: v for k, v in SHARED.items() if k not in rows})
    named = {o for _, opts in GROUPS for o in opts}
    groups = [(title, [rows[o] for o in opts if o in rows]) for title, opts in GROUPS]
    other = [rows[o] for o in options if o not in named]
    if other:
        groups.append(("other", other))
    return groups


def usage(width: int | None = None) -> str:
    width = width or min(110, max(72, shutil.get_terminal_size((100, 24)).columns))
    groups = grouped_options()
    col = 26
    out = ["usage: python -m conformance [URL ...] [options]",
           "",
           "Does the response really arrive progressively, with correct HTTP/1.1 framing? Records each",
           "target over a raw socket and judges every check of the catalogue; writes results.json,",
           "recordings/ and report.html to --report-dir. Every option is also a pytest option:",
           "pytest conformance [options]. All of pytest's own options: pytest --help.",
           ""]
    wrap = textwrap.TextWrapper(width=width, initial_indent="", subsequent_indent=" " * (col + 2))
    for title, rows in groups:
        out.append(f"{title}:")
        for synopsis, text in rows:
            head = f"  {synopsis}"
            if len(head) > col:
                out.append(head)
                out += wrap.wrap(" " * (col + 2) + text) if text else []
            else:
                out += wrap.wrap(f"{head:<{col}}  {text}")
        out.append("")
    out.append("exit codes:")
    out += [f"  {code}  {text}" for code, text in EXIT_CODES]
    out.append("")
    out.append("examples:")
    for what, cmd in EXAMPLES:
        out.append(f"  # {what}")
        out.append(f"  {cmd}")
    out.append("")
    out.append("More: docs/options.md, docs/checks.md, docs/guide.md, docs/gate.md (CI), docs/report.md (reports).")
    return "\n".join(out) + "\n"


def wants_help(argv: list[str]) -> bool:
    """``-h`` or ``--help`` given as an option (not as the value of one, nor after ``--``)."""
    for a in argv:
        if a == "--":
            return False
        if a in ("-h", "--help"):
            return True
    return False
