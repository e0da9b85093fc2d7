"""The two judges that crashed on real stacks, each run on a control of the shape that crashed it,
as a user runs the suite (``python -m conformance URL``, no ``--interval``):

- ``delivery.h2`` on an https target that offers h2 and whose schedule is unknown (both judges it
  reads then report ``units``): an ``h2-only`` hypercorn app that streams over HTTP/2 and holds the
  whole countdown over HTTP/1.1. HTTP/2 passes, HTTP/1.1 fails: exit 1, never 3 or 5.
- ``browser.progressive-render`` on a countdown-shaped page given without ``--interval``: judged
  by the pace the raw recorder's own GET showed (streams: pass), and a held one never raises.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.targets import launcher
from tests.test_browser import require_browser

ROOT = Path(__file__).resolve().parent.parent
# the countdown's items 0.4 s apart: a whole /5 takes 2.4 s, held over HTTP/1.1 it is one release
# after 2.4 s of silence (the schedule-free rule's hold: at least 1 s), streamed five releases
SCALE = 0.4


def conformance(url: str, *args: str, report_dir: Path) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, "-m", "conformance", url, *args, "--report-dir", str(report_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    doc = json.loads((report_dir / "results.json").read_text())
    return proc, doc


def verdicts(doc: dict) -> dict[str, str]:
    return {r["check"]: r["verdict"] for r in doc["results"]}


@pytest.fixture
def server(request):
    mode, module = request.param
    running = launcher.start(f"crash-control-{mode}", ["{python}", "-m", module, mode, "{address}"], SCALE)
    yield running
    running.stop()


@pytest.mark.parametrize("server", [("h2-only", "conformance.targets.h2_server")], indirect=True)
def test_h2_streams_where_http11_is_held(server, tmp_path):
    url = server.base_url.replace("http://", "https://") + "/5"
    proc, doc = conformance(url, "--insecure", "--check", "delivery.h2", "--check", "delivery.progressive",
                            report_dir=tmp_path)
    out = proc.stdout + proc.stderr
    assert not any(r.get("crash") for r in doc["results"]), out[-3000:]
    assert verdicts(doc) == {"delivery.h2": "pass", "delivery.progressive": "fail"}, out[-3000:]
    assert proc.returncode == 1 and doc["exit_code"] == 1
    h2 = next(r for r in doc["results"] if r["check"] == "delivery.h2")
    assert h2["metrics"]["data_frames"] >= 5 and "DATA frames" in h2["observed"]


@pytest.mark.parametrize("server, expected", [(("stream", "conformance.targets.controls"), "pass"),
                                              (("buffered", "conformance.targets.controls"), None)], indirect=["server"])
def test_a_countdown_page_without_interval_in_the_browser(server, expected, tmp_path):
    require_browser()
    # Chromium's check alone (the prefix would select every engine's; WebKit's own rule holds the
    # countdown's tiny items: tests/test_engines.py)
    proc, doc = conformance(server.base_url + "/5", "--check", "browser.progressive-render",
                            "--skip-check", "browser.progressive-render.webkit",
                            "--skip-check", "browser.progressive-render.firefox",
                            "--check", "delivery.progressive", report_dir=tmp_path)
    out = proc.stdout + proc.stderr
    assert not any(r.get("crash") for r in doc["results"]), out[-3000:]
    got = verdicts(doc)
    if expected == "pass":   # judged against the pace of the wire's own GET
        assert got == {"browser.progressive-render": "pass", "delivery.progressive": "pass"}, out[-3000:]
        assert proc.returncode == 0
    else:   # held: the wire fails; the page cannot be timed against a pace that never showed
        assert got["delivery.progressive"] == "fail" and got["browser.progressive-render"] in ("warn", "fail")
        assert proc.returncode == 1, out[-3000:]
