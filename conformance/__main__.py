"""``python -m conformance URL [URL …] [options]``: the suite against URLs, without writing pytest
arguments. Every option of the pytest plugin is accepted (``--help`` lists them, grouped, with the exit
codes: ``usage.py``); the exit code is the suite's (docs/guide.md, "Exit codes")."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest


def pytest_args(argv: list[str]) -> list[str]:
    """Positional URLs become ``--target-url``; everything else goes to pytest as is."""
    checks = str(Path(__file__).resolve().parent / "checks")
    args, rest = [], list(argv)
    # This package is imported before pytest starts, so pytest cannot rewrite its asserts (it
    # has none to rewrite) and would warn about it.
    # The suite's own summary details every finding, so pytest's failure sections are left out.
    # The checks return findings and assert nothing: --assert=plain spares rewriting every module
    # of the package at each start (1.3 s of a run's 2.2 s start where bytecode is not cached).
    # Plugins installed for other uses (the suite's own tests: Hypothesis, anyio) are not loaded:
    # 0.45 s of each start, measured (xdist and pytest-timeout serve -n and --timeout).
    out = [checks, "-p", "conformance.plugin", "-p", "no:cacheprovider", "-q", "--tb=no", "-rN", "--assert=plain",
           "-W", "ignore::pytest.PytestAssertRewriteWarning", *(a for p in UNUSED_PLUGINS for a in ("-p", f"no:{p}"))]
    while rest:
        a = rest.pop(0)
        # curl's letters (DESIGN.md): -X, -d and -H are the long options (pytest's -d is xdist's)
        for short, long in SHORT.items():
            if a == short:
                a = long
            elif a.startswith(short) and len(a) > 2 and not a.startswith("--"):   # -XPOST
                a = f"{long}={a[2:]}"
        if a.startswith("-"):
            args.append(a)
            # options that take a value: pass the value along untouched
            if "=" not in a and rest and not rest[0].startswith("-") and a not in FLAGS:
                args.append(rest.pop(0))
        else:
            args += ["--target-url", a]
    return out + args


SHORT = {"-X": "--method", "-d": "--data", "-H": "--header"}
UNUSED_PLUGINS = ("hypothesispytest", "anyio", "xdist.looponfail")
FLAGS = {"--plan", "--strict", "--insecure", "--follow-redirects", "-q", "-v", "-vv", "-x", "--quiet", "--verbose", "-h", "--help", "-rA", "-s"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from conformance.plugin.usage import usage, wants_help
    if wants_help(argv):   # the suite's own usage (pytest --help stays pytest's)
        print(usage(), end="")
        return 0
    return int(pytest.main(pytest_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
