"""Real stacks nobody here wrote, judged from the URL alone, against what a raw socket saw.

Express 5 with the ``compression`` middleware (npm; ``.ci/run`` installs it into
``targets/express``): an SSE endpoint as tutorials write it. Measured with a raw socket on this
machine: identity streams (an event every 300 ms); asked ``Accept-Encoding: gzip`` the middleware
holds the whole body to the end (all ten events in one read at ~3 s); with ``res.flush()`` after
each write (the middleware's README for server-sent events) gzip streams too. The suite, given
only the URL, must say the same and name the hop and its fix.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.targets import launcher

ROOT = Path(__file__).resolve().parent.parent
EXPRESS = ROOT / "targets" / "express"
SCALE = 1.0   # ten events 300 ms apart: 3 s; a hold to the end is 3 s of silence (the rule's: 1 s)


def express(env: dict):
    if shutil.which("node") is None or not (EXPRESS / "node_modules" / "express").is_dir():
        why = "Express is not installed (cd targets/express && npm install)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-stack controls, but {why}")
        pytest.skip(why)
    return launcher.start("express", ["node", str(EXPRESS / "app.js"), "{port}"], SCALE, env=env, cwd=str(EXPRESS))


@pytest.mark.parametrize("env, verdict", [({"COMPRESS": "1"}, "fail"), ({"COMPRESS": "1", "FLUSH": "1"}, "pass")],
                         ids=["compression", "compression-flush"])
def test_express_compression(env, verdict, tmp_path):
    server = express(env)
    try:
        proc = subprocess.run([sys.executable, "-m", "conformance", server.base_url + "/events", "--report-dir",
                               str(tmp_path), "--check", "delivery.compressed", "--check", "delivery.progressive"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    doc = json.loads((tmp_path / "results.json").read_text())
    by = {r["check"]: r for r in doc["results"]}
    out = proc.stdout[-3000:]
    assert by["delivery.progressive"]["verdict"] == "pass", out            # identity streams either way
    assert by["delivery.compressed"]["verdict"] == verdict, out
    assert proc.returncode == (1 if verdict == "fail" else 0), out
    if verdict == "fail":
        [cause] = doc["targets"][0]["diagnosis"]
        assert "only under compression" in cause["cause"] and "Express" in cause["hop"], cause
        assert "res.flush()" in cause["fix"], cause
