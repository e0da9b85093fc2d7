"""Redirects (conformance/wire/redirects.py): none is followed unless asked, and when asked, the
``--header`` values (credentials) never go to another origin. Credentials in a URL are sent and
never shown.

Two small servers in this process stand for two origins. Each logs the request heads it gets, so
a test can tell which requests reached which origin and with which headers.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conformance.targets.controls import serve_requests

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Bearer s3cret-token"
BODY = b"hello, final\n"


class Origin:
    """A loopback server that answers by path and logs every request head it reads."""

    def __init__(self):
        self.heads: list[str] = []
        self.other: Origin | None = None   # the origin /away points to
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=serve_requests, args=(conn, self._answer(conn)), daemon=True).start()

    def _answer(self, conn):
        def answer(method, path, version, head):
            self.heads.append(head.decode("latin-1"))
            where = {"/away": f"{self.other.base if self.other else ''}/final", "/here": "/final",
                     "/loop": "/loop", "/script": "javascript:alert(1)"}.get(path)
            if where is not None:
                conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {where}\r\nContent-Length: 0\r\n\r\n".encode())
            else:
                body = b"" if method == "HEAD" else BODY
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(BODY), body))
            return True
        return answer

    def close(self):
        self.sock.close()


@pytest.fixture
def origins():
    first, second = Origin(), Origin()
    first.other = second
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def run(url: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    p = subprocess.run([sys.executable, "-m", "conformance", url, "--check", "framing.", "--profile", "bytes",
                        "--header", f"Authorization: {SECRET}", "--report-dir", str(tmp_path), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in p.stdout + p.stderr, p.stdout[-3000:] + p.stderr[-3000:]
    return p, json.loads((tmp_path / "results.json").read_text())


def judged(doc: dict) -> set[str]:
    return {r["verdict"] for r in doc["results"]} - {"skip"}


def test_a_redirect_is_not_followed_by_default(origins, tmp_path):
    first, second = origins
    p, doc = run(first.base + "/away", tmp_path)
    assert p.returncode == 6 and judged(doc) == {"error"}
    observed = {r["observed"] for r in doc["results"] if r["verdict"] == "error"}
    assert observed == {f"HTTP 302 Found: a redirect to '{second.base}/final', which the suite does not follow "
                        f"(point it at that URL, or pass --follow-redirects)"}
    assert second.heads == [] and first.heads, "the other origin was contacted"


def test_asked_to_follow_it_records_the_final_url_without_the_secret_headers(origins, tmp_path):
    first, second = origins
    p, doc = run(first.base + "/away", tmp_path, "--follow-redirects")
    assert p.returncode == 0, p.stdout[-3000:]
    target = doc["targets"][0]
    assert target["url"] == second.base + "/final"
    assert target["redirects"] == [f"302 → {second.base}/final",
                                   "--header values not sent: the redirects lead to another origin"]
    assert judged(doc) == {"pass"}
    assert all(SECRET in h for h in first.heads)
    assert second.heads and not any("authorization" in h.lower() for h in second.heads)
    assert "redirect: 302" in p.stdout


def test_a_same_origin_redirect_keeps_the_headers(origins, tmp_path):
    first, second = origins
    p, doc = run(first.base + "/here", tmp_path, "--follow-redirects")
    assert p.returncode == 0, p.stdout[-3000:]
    assert doc["targets"][0]["url"] == first.base + "/final"
    assert doc["targets"][0]["redirects"] == [f"302 → {first.base}/final"]
    assert len(first.heads) > 2 and all(SECRET in h for h in first.heads) and second.heads == []
    # the value is sent, never shown
    assert SECRET not in (tmp_path / "results.json").read_text() + (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("path, why", [
    ("/loop", "more than 5 redirects from {base}/loop"),
    ("/script", "{base}/script redirects to 'javascript:alert(1)', which is not followed: "),
])
def test_a_redirect_that_leads_nowhere_is_an_error(origins, tmp_path, path, why):
    first, _ = origins
    p, doc = run(first.base + path, tmp_path, "--follow-redirects")
    assert p.returncode == 6 and judged(doc) == {"error"}
    assert doc["targets"][0]["error"].startswith(why.format(base=first.base))
    assert len(first.heads) <= 6   # 1 + MAX_HOPS probes, then nothing recorded


def test_credentials_in_the_url_are_sent_as_basic_auth_and_shown_nowhere(origins, tmp_path):
    first, _ = origins
    url = first.base.replace("http://", "http://alice:pa55word@") + "/final"
    p = subprocess.run([sys.executable, "-m", "conformance", url, "--check", "framing.", "--profile", "bytes",
                        "--report-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:]
    assert first.heads and all("Authorization: Basic YWxpY2U6cGE1NXdvcmQ=" in h for h in first.heads)
    shown = p.stdout + p.stderr + "".join(f.read_text() for f in tmp_path.rglob("*") if f.is_file())
    assert "pa55word" not in shown and "YWxpY2U6cGE1NXdvcmQ" not in shown
    assert json.loads((tmp_path / "results.json").read_text())["targets"][0]["id"] == first.base + "/final"
