"""``report.html``: one self-contained page (inline CSS, inline SVG, no script, no network)
built from the files in a report dir, so it can be rebuilt offline:
``python -m conformance.report reports/latest``.

Rendered with Jinja2 with autoescape on for every template; nothing a server sent is ever
marked safe. See ``model.py`` for what is shown and how it is bounded.
"""
from __future__ import annotations

import os
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from conformance.report import model

REPORT_NAME = "report.html"


def environment() -> Environment:
    return Environment(loader=PackageLoader("conformance.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(report_dir: Path) -> str:
    report = model.build(Path(report_dir))
    return environment().get_template("report.html").render(r=report)


def write_html(report_dir: Path) -> Path:
    """Write ``report.html`` into ``report_dir`` from its ``results.json`` and recordings."""
    report_dir = Path(report_dir)
    page = render(report_dir)
    path = report_dir / REPORT_NAME
    tmp = path.with_name(f".{REPORT_NAME}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
