"""The ``report`` layer: reports people read, written from the files of a report dir
(``report.html``: ``html.py``), and shards joined into one run (``shards.py``). It may import
``engine`` and every layer below it; never ``plugin`` or ``targets/`` (``docs/design.md``,
"Layers"). The JSON Schemas of ``results.json`` and of a recording are in ``conformance.schema``."""
from conformance.report.html import write_html

__all__ = ["write_html"]
