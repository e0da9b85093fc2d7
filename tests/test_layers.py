"""The house's floors (docs/design.md, "Layers"): the import contract in pyproject.toml
(``[tool.importlinter]``) is kept, and it is able to fail.

``lint-imports`` (import-linter, PyPI) reads every import of ``conformance``, those inside
functions too, and checks the layers ``wire < analysis < scenarios < checks < engine < report <
plugin`` and that only the engine and the plugin import the reference servers,
``conformance.targets``. Their source is the repository's top-level ``targets/``, which the
package maps into its namespace (``package-dir`` in pyproject.toml); import-linter reads one
folder per package, so it is run on a copy of the house laid out as the wheel installs it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def installed_layout(into: Path) -> Path:
    """A copy of the house as the wheel installs it: ``targets/`` as ``conformance/targets/``."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "conformance", into / "conformance", ignore=ignore)
    shutil.copytree(ROOT / "targets", into / "conformance" / "targets", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(cwd / "pyproject.toml")], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contract_is_kept(tmp_path):
    r = lint(installed_layout(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def test_an_import_from_a_lower_floor_to_a_higher_one_breaks_it(tmp_path):
    """The control: a copy of the house in which the wire imports the plugin."""
    installed_layout(tmp_path)
    recording = tmp_path / "conformance" / "wire" / "recording.py"
    recording.write_text(recording.read_text() + "\nimport conformance.plugin  # noqa: E402\n")
    r = lint(tmp_path)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "conformance.wire.recording -> conformance.plugin" in r.stdout, r.stdout


def test_scenarios_run_in_one_explicit_order():
    """``ORDER`` names every scenario once, and every check reads a scenario it names; the order
    is the list's, whatever order the modules were imported in."""
    from conformance.checks.catalogue import load_all
    from conformance.scenarios.base import ORDER, SCENARIOS, Scenario, order, register

    checks = load_all()
    assert len(set(ORDER)) == len(ORDER)
    assert set(SCENARIOS) == set(ORDER)
    assert {c.scenario for c in checks.values()} <= set(ORDER)
    assert sorted(reversed(ORDER), key=order) == list(ORDER)
    try:
        register(Scenario("unplaced", "a scenario ORDER does not name", lambda ctx: None))
    except ValueError as e:
        assert "ORDER" in str(e)
    else:
        raise AssertionError("a scenario outside ORDER was registered")
    assert "unplaced" not in SCENARIOS


def test_a_check_module_importing_another_breaks_it(tmp_path):
    """The control: a copy of the house in which one check module imports another."""
    installed_layout(tmp_path)
    browser = tmp_path / "conformance" / "checks" / "test_browser.py"
    browser.write_text(browser.read_text() + "\nfrom conformance.checks.test_clients import test_httpx  # noqa: E402,F401\n")
    r = lint(tmp_path)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "conformance.checks.test_browser -> conformance.checks.test_clients" in r.stdout, r.stdout
