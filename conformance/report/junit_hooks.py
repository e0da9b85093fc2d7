"""pytest hooks that make ``--junitxml`` read like the catalogue: one testcase per
(target, check), named ``CHECK-ID[TARGET]`` (e.g. ``framing.chunked-once[webpy-seed]``), with
the check's facts as ``<properties>``.

pytest names a testcase after its test function (``test_chunked_once[webpy-seed]``); a
user-defined ``name`` attribute on the node reporter survives pytest's own (that is how the
``record_xml_attribute`` fixture works), so it is set before pytest writes the testcase. The
failure message is pytest's own: the catalogue fails a test with the result's description,
which quotes the requirement and the observed facts (``catalogue.describe``).

Registered from the suite's plugin; it only acts on catalogue check tests and only names
testcases when ``--junitxml`` is given.
"""
from __future__ import annotations

import pytest

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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Before pytest's junitxml handles a report, give its testcase the catalogue's name."""
    name = getattr(report, "conformance_testcase", None)
    if name is None:
        return
    from _pytest.junitxml import xml_key  # the LogXML instance, present only with --junitxml

    xml = _config.stash.get(xml_key, None) if _config is not None else None
    if xml is not None:
        xml.node_reporter(report).add_attribute("name", name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    ids = _check_and_target(item)
    if ids is None:
        return report
    report.conformance_testcase = testcase_name(*ids)
    if call.when == "call":
        _add_result_properties(item, *ids)
        # the teardown report copies item.user_properties, and junitxml writes them from it
    return report


def _add_result_properties(item: pytest.Item, check_id: str, target_id: str) -> None:
    from conformance.plugin import RUN_KEY

    run = item.config.stash.get(RUN_KEY, None)
    result = None
    if run is not None:
        result = next((r for r in reversed(run.results) if r["target"] == target_id and r["check"] == check_id), None)
    have = {k for k, _ in item.user_properties}
    if result is None:
        props = [("check", check_id), ("target", target_id)]
    else:
        props = [(k, result.get(k)) for k in RESULT_PROPERTIES if result.get(k) not in (None, "")]
    for k, v in props:
        if k not in have:
            text = str(v)
            item.user_properties.append((k, text if len(text) <= PROPERTY_CAP else text[:PROPERTY_CAP] + "…"))
