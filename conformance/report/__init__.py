"""Reports people read, written from the files of a report dir: ``report.html`` (``html.py``),
and the JUnit naming hooks (``junit_hooks.py``). The JSON Schemas of ``results.json`` and of a
recording are in ``conformance.schema``."""
from conformance.report.html import write_html

__all__ = ["write_html"]
