"""The wheel works outside the repository, and installs no top-level ``targets``.

The reference servers' source is the repository's top-level ``targets/`` (for readers); the
wheel ships them inside the package's namespace, as ``conformance.targets`` (``package-dir`` in
pyproject.toml). Here the wheel is built (``pip wheel --no-deps``) from a copy of the sources,
installed with ``--no-deps`` into a fresh venv outside the repository, and run from an empty
directory as a user runs it: ``--help`` and a built-in target. The venv borrows the dependencies
(h11, pytest, ...) from this interpreter's ``sys.path`` through ``.pth`` lines, which add the
folders without running their ``.pth`` files, so this checkout's editable install is not active
there: the project itself comes from the wheel, which the test asserts.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(argv: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (setuptools writes build/ beside them)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in ("conformance", "targets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    r = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
              "-w", tmp / "dist", src], cwd=tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp / "dist").glob("*.whl")
    return whl


def test_the_wheel_ships_the_servers_inside_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"conformance"}, tops
    sources = {f"conformance/{p.relative_to(ROOT / 'conformance').as_posix()}"
               for p in (ROOT / "conformance").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    sources |= {f"conformance/targets/{p.relative_to(ROOT / 'targets').as_posix()}"
                for p in (ROOT / "targets").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources - names == set(), "every module and data file of the package is in the wheel"


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv outside the repository with the wheel installed (``--no-deps``); its python."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    r = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--disable-pip-version-check", wheel],
             cwd=env_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=env_dir).stdout.strip()
    # the dependencies, from this interpreter's path (path lines: the .pth files there are not run, so
    # the checkout's editable install is not active); no folder that holds the project's sources
    borrowed = [p for p in map(os.path.abspath, filter(None, sys.path)) if os.path.isdir(p)
                and not any(os.path.isdir(os.path.join(p, name)) for name in ("conformance", "targets"))]
    Path(site, "zz_dependencies.pth").write_text("\n".join(borrowed) + "\n")
    return python


def test_the_project_comes_from_the_wheel_and_targets_is_no_top_level_package(installed, tmp_path):
    r = _run([installed, "-c", "import importlib.util, conformance, conformance.targets.registry as reg; "
              "print(conformance.__file__); print(importlib.util.find_spec('targets')); print(len(reg.BUILTINS))"],
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, targets_spec, builtins = r.stdout.split()
    assert Path(where).is_relative_to(installed.parent.parent), where
    assert not Path(where).is_relative_to(ROOT)
    assert targets_spec == "None", "no top-level package named targets"
    assert int(builtins) > 20


def test_python_m_conformance_runs_a_builtin_target_from_the_wheel(installed, tmp_path):
    r = _run([installed, "-m", "conformance", "--help"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--target" in r.stdout
    r = _run([installed, "-m", "conformance", "--target", "control-stream", "--time-scale", "0.05",
              "--check", "framing."], cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "reports" / "latest" / "results.json").is_file()
