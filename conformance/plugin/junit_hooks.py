"""pytest hooks that make ``--junitxml`` read like the catalogue: one testcase per
(target, check), named ``CHECK-ID[TARGET]`` (e.g. ``framing.chunked-once[webpy-seed]``), with
the check's facts as ``<properties>``.

pytest names a testcase after its test function (``test_chunked_once[webpy-seed]``); a
user-defined ``name`` attribute on the node reporter survives pytest's own (that is how the
``record_xml_attribute`` fixture works), so it is set before pytest writes the testcase. The
failure message is pytest's own: the catalogue fails a test with the result's description,
which quotes the requirement and the observed facts (``catalogue.describe``); as pytest keeps
only 500 characters of it in the ``message`` attribute, that attribute is rewritten to lead with
the verdict and the observed facts, then the requirement (the element text keeps the full one).

Registered from the suite's plugin; it only acts on catalogue check tests and only names
testcases when ``--junitxml`` is given.
"""
from __future__ import annotations

import pytest

from conformance.plugin.session import RUN_KEY

# what each testcase carries as <property> elements, from the result (results.json's fields)
RESULT_PROPERTIES = ("check", "target", "level", "verdict", "spec", "requirement", "expected", "observed", "recording")
PROPERTY_CAP = 2000
_config: pytest.Config | None = None   # the session's config, for the junitxml writer's lookup


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config


def pytest_unconfigure(config: pytest.Config) -> None:
    global _config
    if _config is config:
        _config = None


def _check_and_target(item: pytest.Item) -> tuple[str, str] | None:
    check = getattr(getattr(item, "function", None), "check", None)
    callspec = getattr(item, "callspec", None)
    if check is None or callspec is None:
        return None
    target = callspec.params.get("conformance_target")
    target_id = getattr(target, "id", None)
    if target_id is None:
        return None
    return check.id, str(target_id)


def testcase_name(check_id: str, target_id: str) -> str:
    return f"{check_id}[{target_id}]"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_logreport(report: pytest.TestReport):
    """Around pytest's junitxml writer: name the testcase before it is written, and after it,
    make the failure's ``message`` lead with the facts (pytest keeps only the first 500
    characters of the report there, which would cut the observed facts off)."""
    name = getattr(report, "conformance_testcase", None)
    xml = _log_xml() if name is not None else None
    if xml is not None:
        xml.node_reporter(report).add_attribute("name", name)
    result = yield
    if xml is not None and report.when == "call" and report.failed:
        # under pytest-xdist the result was judged on a worker: it travels with the report
        found = getattr(report, "conformance_result", None) or _result(getattr(report, "conformance_ids", None))
        if found is not None:
            _set_failure_message(xml.node_reporter(report), failure_message(found))
    return result


def _log_xml():
    from _pytest.junitxml import xml_key  # the LogXML instance, present only with --junitxml

    return _config.stash.get(xml_key, None) if _config is not None else None


def _result(ids) -> dict | None:
    if _config is None or not ids:
        return None

    run = _config.stash.get(RUN_KEY, None)
    if run is None:
        return None
    check_id, target_id = ids
    return next((r for r in reversed(run.results) if r["target"] == target_id and r["check"] == check_id), None)


def _cap(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_message(r: dict) -> str:
    """The verdict, the observed facts, then the requirement: what a CI page shows first."""
    lines = [f"{r['verdict'].upper()} {r['check']} [{r['level']}] {r['target']}",
             f"observed: {_cap(r.get('observed', ''), 500)}"]
    if r.get("expected"):
        lines.append(f"expected: {_cap(r['expected'], 300)}")
    lines.append(f"requirement ({r.get('spec', '')}): {_cap(r.get('requirement', ''), 500)}")
    return "\n".join(lines)


def _set_failure_message(node_reporter, message: str) -> None:
    from _pytest.junitxml import bin_xml_escape

    for node in getattr(node_reporter, "nodes", []):  # pytest's own elements for this testcase
        if getattr(node, "tag", None) in ("failure", "error"):
            node.set("message", bin_xml_escape(message))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    ids = _check_and_target(item)
    if ids is None:
        return report
    report.conformance_testcase = testcase_name(*ids)
    report.conformance_ids = ids
    if call.when == "call":
        _add_result_properties(item, *ids)
        if report.failed and hasattr(item.config, "workerinput"):
            report.conformance_result = _result(ids)
        # the teardown report copies item.user_properties, and junitxml writes them from it
    return report


def _add_result_properties(item: pytest.Item, check_id: str, target_id: str) -> None:
    result = _result((check_id, target_id))
    have = {k for k, _ in item.user_properties}
    if result is None:
        props = [("check", check_id), ("target", target_id)]
    else:
        props = [(k, result.get(k)) for k in RESULT_PROPERTIES if result.get(k) not in (None, "")]
    for k, v in props:
        if k not in have:
            text = str(v)
            item.user_properties.append((k, text if len(text) <= PROPERTY_CAP else text[:PROPERTY_CAP] + "…"))
