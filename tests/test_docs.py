"""Documents with one source each: the check and option references in docs/ are what the
catalogue and the plugin's options generate (``conformance/plugin/reference.py``), and the README
stays one screen per use."""
from __future__ import annotations

from pathlib import Path

import pytest

from conformance.plugin.reference import DOCUMENTS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_a_generated_reference_has_not_drifted(name):
    have = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert have == DOCUMENTS[name](), (f"docs/{name} is not what its source says: "
                                       "run python -m conformance.plugin.reference")


def test_the_drift_test_sees_a_change(monkeypatch):
    """The control: an option's help text changed at its source shows in the generated text."""
    from conformance.plugin import reference, usage
    real = usage.plugin_options

    def changed():
        options = real()
        names, attrs = options["--watch"]
        options["--watch"] = (names, dict(attrs, help="a help text the file does not have"))
        return options
    monkeypatch.setattr(usage, "plugin_options", changed)
    assert (ROOT / "docs" / "options.md").read_text(encoding="utf-8") != reference.options_md()


def test_the_readme_fits_a_screen_per_use():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) < 12 * 1024
    first_section = readme.index("\n## ")
    commands = [line.strip() for line in readme[:first_section].splitlines() if line.startswith("    ")]
    assert len(commands) == 2, commands   # the main job, then the suite's own tests: before anything else
    assert all(c.startswith("python3 -m venv .venv && ") for c in commands), commands   # each from a fresh clone
    assert commands[0].endswith("python -m pytest") and " -m pytest tests " in commands[1]
    # CI runs the README's test command (quietly)
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("exec ")][-1]
    ci_args = [a for a in ci.split("#")[0].split(" -m pytest ", 1)[1].split() if a != "-q"]
    assert ci_args == commands[1].split(" -m pytest ", 1)[1].split(), (ci, commands[1])
