"""The benchmark harness (``python -m bench``) runs end to end on a small body and prints its
table; the full benchmark is run by hand (it takes minutes and a quiet machine)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)")
def test_bench_quick_prints_the_table(tmp_path):
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    assert table.startswith("| # | measurement | result | goal |")
    assert "64 KiB chunks" in table and "1 KiB chunks" in table and "x curl" in table
    assert "peak RSS, 8 MiB body" in table and "peak RSS, 16 MiB body" in table
    assert "verdict flips" in table
    text = out.read_text()
    assert text.startswith("# Benchmark results") and table.splitlines()[2] in text
    assert "Measured " in text and " UTC by `python -m bench` on " in text
