"""JSON Schemas (draft 2020-12) of the files a run writes, shipped with the package.

``load("results")`` is the schema of ``results.json``; ``load("recording")`` that of a file in
``recordings/``. ``validate(doc, "results")`` checks a document with the ``jsonschema``
library (a dev dependency: ``pip install http-streaming-conformance[dev]``).
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

NAMES = ("results", "recording")


@lru_cache(maxsize=None)
def _text(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}; one of {', '.join(NAMES)}")
    return resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


def load(name: str = "results") -> dict:
    """The schema as a fresh dict."""
    return json.loads(_text(name))


def validate(document: dict, name: str = "results") -> None:
    """Raise ``jsonschema.ValidationError`` if ``document`` does not match the schema."""
    import jsonschema

    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
