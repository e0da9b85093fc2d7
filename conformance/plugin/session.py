"""The run of one pytest session, shared by the plugin's hooks, the xdist controller
(``distributed.py``) and the JUnit hooks: where the ``Run`` is kept, whether the session runs the
check catalogue, and writing the reports at its end."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conformance.checks import catalogue
from conformance.engine.run import Run
from conformance.report import write_html

RUN_KEY = pytest.StashKey[Run]()


def collects_checks(config: pytest.Config) -> bool:
    """Whether this pytest run is pointed at the check catalogue (not only at other tests)."""
    checks = Path(catalogue.__file__).resolve().parent
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == checks or checks in path.parents or path in checks.parents:
            return True
    return False


def write_reports(run: Run, config: pytest.Config) -> bool:
    """Everything written besides results.json (report.html, …) is hooked in here; False when
    something could not be written (said loudly; the run then exits 3, never 0)."""
    # report.html is rebuilt from the report dir's files alone (python -m conformance.report DIR).
    try:
        write_html(run.options.report_dir)
        return True
    except Exception as e:  # noqa: BLE001 - any bug here must not hide the results
        say_unwritten(run, config, f"report.html was not written: {type(e).__name__}: {e}")
        return False


def say_unwritten(run: Run, config: pytest.Config, message: str) -> None:
    run.unwritten.append(message)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(message, red=True)
    else:
        print(message, file=sys.stderr)
