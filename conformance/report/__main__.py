"""Rebuild ``report.html`` offline: ``python -m conformance.report [REPORT_DIR]``; join CI shards:
``python -m conformance.report merge DIR... [--out DIR] [--baseline PATH]`` (``shards.py``)."""
from __future__ import annotations

import sys
from pathlib import Path

from conformance.report.html import write_html
from conformance.report.shards import merge_main

USAGE = """\
usage: python -m conformance.report [REPORT_DIR]            rebuild report.html (default reports/latest)
       python -m conformance.report merge DIR... [--out DIR] [--baseline PATH]
                                                         join shards into one report (merge --help)"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "merge":
        return merge_main(args[1:])
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(USAGE)
        return 0 if args and args[0] in ("-h", "--help") else 4
    report_dir = Path(args[0] if args else "reports/latest")
    if not (report_dir / "results.json").is_file():
        print(f"no results.json in {report_dir}", file=sys.stderr)
        return 4
    print(write_html(report_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
