"""``--app MODULE:ATTR`` and the ``stream_check`` fixture, on small apps of each kind
(``tests/streamapps/``): SSE events 0.3 s apart, eight of them, so a held stream is held 2.1 s
(the schedule-free rule needs a second's silence to call a hold).

- Flask (``stream_with_context``) streams under gunicorn gthread and waitress; nginx's defaults
  hold it; with ``proxy_buffering off`` it streams.
- FastAPI with ``time.sleep`` in an async generator streams alone, but uvicorn then serves one
  stream at a time: ``delivery.concurrent`` fails (``asyncio.sleep`` passes).
- Django's ``StreamingHttpResponse`` streams under gunicorn; with ``GZipMiddleware`` a browser's
  request gets it held (``delivery.compressed`` fails).
- What cannot be used is a one-line usage error (exit 4); a server not installed is ``skip`` with
  its install hint; no server outlives a run, finished or interrupted.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conformance.engine import apps

from conformance import schema
from conformance.report import model as report_model
from conformance.plugin.fixture import StreamCheck
from processes import processes_tagged

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
FLASK, FASTAPI = "streamapps.flask_sse:app", "streamapps.fastapi_sleep:app"
DJANGO, DJANGO_GZIP = "streamapps.django_stream:application", "streamapps.django_gzip:application"


@pytest.fixture(autouse=True)
def tagged(monkeypatch):
    """Every process a test starts carries a tag in its environment: none may be left after it."""
    tag = f"CONFORMANCE_APP_TEST={uuid.uuid4()}"
    monkeypatch.setenv("CONFORMANCE_APP_TEST", tag.split("=", 1)[1])
    yield tag
    left = processes_tagged(tag)
    assert [p for p in left if p != os.getpid()] == [], "a server outlived its run"


def cli(*args, timeout=120, env=None):
    """``python -m conformance`` from the tests folder (where ``streamapps`` is importable)."""
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=TESTS, capture_output=True, text=True,
                          timeout=timeout, env=env)


# --- telling WSGI from ASGI -------------------------------------------------------------------

def wsgi_function(environ, start_response):
    return [b""]


async def asgi_function(scope, receive, send):
    pass


class AsgiClass:
    async def __call__(self, scope, receive, send):
        pass


class WsgiClass:
    def __call__(self, environ, start_response):
        return [b""]


class AsgiMiddleware:   # sync __call__ returning the awaitable
    def __call__(self, scope, receive, send):
        return asgi_function(scope, receive, send)


@pytest.mark.parametrize("obj, kind", [(wsgi_function, "wsgi"), (asgi_function, "asgi"), (AsgiClass(), "asgi"),
                                       (WsgiClass(), "wsgi"), (AsgiMiddleware(), "asgi")])
def test_the_kind_is_told_from_the_callable(obj, kind):
    assert apps.kind_of(obj) == kind


@pytest.mark.parametrize("obj, why", [(AsgiClass, "is the class AsgiClass"), (42, "not a callable"),
                                      (lambda: None, "takes 0 positional arguments")])
def test_what_is_no_app_says_why(obj, why):
    with pytest.raises(ValueError, match=why):
        apps.kind_of(obj)


@pytest.mark.parametrize("spec, kind", [(FLASK, "wsgi"), (FASTAPI, "asgi"), (DJANGO, "wsgi")])
def test_each_framework_is_told_apart_in_a_child(monkeypatch, spec, kind):
    monkeypatch.chdir(TESTS)
    assert apps.inspect_app(spec) == kind
    assert "streamapps.django_stream" not in sys.modules


# --- usage errors: one line, exit 4 ---------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--app", "nosuchmodule:app"], "--app nosuchmodule:app: no module named 'nosuchmodule'"),
    (["--app", "streamapps.flask_sse"], "expected MODULE:ATTR"),
    (["--app", "streamapps.flask_sse:nope"], "module streamapps.flask_sse has no attribute 'nope'"),
    (["--app", "streamapps.broken:app"], "importing streamapps.broken failed: ZeroDivisionError: division by zero ("),
    (["--app", "streamapps:sse"], "neither WSGI"),
    (["--app", FLASK, "--server", "tomcat"], "--server 'tomcat': not a known server"),
    (["--app", FLASK, "--behind", "apache"], "--behind apache: not a known front"),
    (["--app", FLASK, "--app-path", "events"], "--app-path 'events': expected a path starting with /"),
    (["--server", "waitress"], "--server needs --app"),
])
def test_an_app_that_cannot_be_used_is_a_one_line_usage_error(args, message):
    res = cli(*args)
    assert res.returncode == 4, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr


# --- the controls ---------------------------------------------------------------------------

def test_flask_sse_streams_under_gthread_and_waitress_and_nginx_defaults_hold_it(stream_check):
    found = stream_check(FLASK, path="/events", server=["gunicorn-gthread", "waitress"], behind="nginx",
                         checks=["delivery.progressive"])
    assert found.verdicts("delivery.progressive") == {
        f"{FLASK}@gunicorn-gthread/events": "pass",
        f"{FLASK}@gunicorn-gthread+nginx/events": "fail",
        f"{FLASK}@gunicorn-gthread+nginx-unbuffered/events": "pass",
        f"{FLASK}@waitress/events": "pass",
        f"{FLASK}@waitress+nginx/events": "fail",
        f"{FLASK}@waitress+nginx-unbuffered/events": "pass",
    }, [f.observed for f in found]
    held = [f for f in found if f.verdict == "fail"]
    assert all("8 of 8 events completed at once" in f.observed for f in held)
    with pytest.raises(AssertionError) as e:
        found.assert_ok()
    message = str(e.value)
    assert message.startswith(f"stream_check({FLASK!r}, path='/events'): 2 findings at MUST level not met")
    assert message.count("FAIL delivery.progressive [MUST]") == 2 and "+nginx/events" in message
    assert "requirement (suite rule (RFC 9112 §7.1)): The body arrives in as many separate bursts" in message
    assert "proxy_buffering off" in message   # the diagnosis's fix, with the finding
    # the recordings and the report are under pytest's tmp_path
    assert found.report_dir.parent.name.startswith("test_flask_sse")
    assert all(f.recording is not None and f.recording.exists() for f in found)
    assert (found.report_dir / "report.html").exists()
    doc = json.loads(found.results_path.read_text())
    assert {t["id"]: t["interval_s"] for t in doc["targets"]} == {f.target: None for f in found}
    assert {t["profile"] for t in doc["targets"]} == {"sse"}   # from the response
    schema.validate(doc, "results")
    assert doc["targets"][1]["app"] == {"app": FLASK, "name": FLASK, "kind": "wsgi", "server": "gunicorn-gthread",
                                        "front": "nginx", "path": "/events"}
    # report.html: the app's servers × fronts table, each cell the target's worst verdict
    table = report_model.build(found.report_dir).app_tables
    assert [(t["app"], t["path"], t["kind"]) for t in table] == [(FLASK, "/events", "WSGI")]
    assert [[(c["verdict"], c["not_met"]) for c in row["cells"]] for row in table[0]["rows"]] == [
        [("pass", []), ("fail", ["delivery.progressive"]), ("pass", [])]] * 2
    assert [row["server"] for row in table[0]["rows"]] == ["gunicorn-gthread", "waitress"]
    html = (found.report_dir / "report.html").read_text()
    assert "Your app: servers × fronts" in html and "behind nginx, proxy_buffering off" in html


def test_fastapi_time_sleep_streams_alone_but_uvicorn_serves_one_stream_at_a_time(stream_check):
    found = stream_check(FASTAPI, path=["/events", "/good"], server="uvicorn", concurrent_streams=2,
                         checks=["delivery.progressive", "delivery.concurrent"])
    v = {(f.target.rsplit("/", 1)[1], f.check): f.verdict for f in found}
    assert v == {("events", "delivery.progressive"): "pass", ("events", "delivery.concurrent"): "fail",
                 ("good", "delivery.progressive"): "pass", ("good", "delivery.concurrent"): "pass"}, \
        [f.observed for f in found]
    bad = found.failing()
    assert [f.check for f in bad] == ["delivery.concurrent"]
    assert "served one after another, not side by side" in bad[0].observed


def test_django_streams_under_gunicorn_and_gzip_middleware_holds_it(stream_check):
    checks = ["delivery.progressive", "delivery.compressed"]
    plain = stream_check(DJANGO, path="/events", server="gunicorn-sync", checks=checks)
    assert plain.verdicts("delivery.progressive") == {f"{DJANGO}@gunicorn-sync/events": "pass"}
    assert plain.verdict("delivery.compressed") == "pass"   # nothing compresses it
    plain.assert_ok()
    gzip = stream_check(DJANGO_GZIP, path="/events", server="gunicorn-sync", checks=checks)
    assert gzip.verdict("delivery.progressive") == "pass", gzip.findings
    assert gzip.verdict("delivery.compressed") == "fail", gzip.findings
    held = next(f for f in gzip if f.check == "delivery.compressed")
    assert "gzip" in held.observed and "held to the end" in held.observed
    with pytest.raises(AssertionError, match="delivery.compressed"):
        gzip.assert_ok()


def test_large_url_is_a_path_on_the_apps_own_server(stream_check):
    found = stream_check(FLASK, path="/events", server="waitress", large_url="/large", checks=["delivery.large-body"])
    assert found.verdict("delivery.large-body") == "pass", found.findings
    assert found.findings[0].metrics["bytes"] == 32 * 2 ** 20
    without = stream_check(FLASK, path="/events", server="waitress", checks=["delivery.large-body"])
    assert "give its path with --large-url /PATH" in without.findings[0].observed


def test_a_url_is_checked_too(stream_check):
    from conformance.targets import launcher
    server = launcher.start("probe", ["{python}", "-m", "conformance.probe", "--port", "{port}"])
    try:
        found = stream_check(server.base_url + "/sse/3?interval=0.2", checks=["delivery.progressive"])
    finally:
        server.stop()
    assert isinstance(found, StreamCheck) and len(found) == 1
    assert found.verdict("delivery.progressive") == "pass"
    found.assert_ok(level="SHOULD")


def test_a_server_not_installed_or_not_fitting_is_skip_with_the_reason(stream_check, monkeypatch):
    monkeypatch.setitem(sys.modules, "daphne", None)   # whether or not it is installed here
    found = stream_check(FASTAPI, path="/good", server=["daphne", "cheroot"], checks=["delivery.progressive"])
    why = {f.target: f.observed for f in found}
    assert {f.verdict for f in found} == {"skip"}
    if apps.servers()["daphne"].missing():
        assert "daphne not installed (pip install daphne)" in why[f"{FASTAPI}@daphne/good"]
    assert "cheroot serves WSGI apps; streamapps.fastapi_sleep:app is ASGI" in why[f"{FASTAPI}@cheroot/good"]
    assert found.exit_code == 5   # no check ran


def test_defaults_are_the_installed_servers_of_the_apps_kind():
    table = apps.servers()
    assert [s for s in apps.default_servers("wsgi") if s in table] == \
        [n for n in ("cheroot", "waitress", "gunicorn-sync", "gunicorn-gthread") if table[n].missing() is None]
    assert set(apps.default_servers("asgi")) <= {"uvicorn", "hypercorn", "daphne"}
    assert apps.expand_behind(["nginx"]) == [None, "nginx", "nginx-unbuffered"]


def test_a_targets_file_names_an_app(tmp_path, monkeypatch):
    from conformance.engine.targets_file import load
    monkeypatch.chdir(TESTS)
    f = tmp_path / "t.toml"
    f.write_text('[[target]]\nid = "events"\napp = "streamapps.flask_sse:app"\napp_path = "/events"\n'
                 'servers = ["waitress", "cheroot"]\nbehind = "nginx"\nwatch = 5\n\n'
                 '[[target]]\napp = "streamapps.fastapi_sleep:app"\nprofile = "sse"\n')
    targets = load(f)
    assert [t.id for t in targets] == [
        "events@waitress/events", "events@waitress+nginx/events", "events@waitress+nginx-unbuffered/events",
        "events@cheroot/events", "events@cheroot+nginx/events", "events@cheroot+nginx-unbuffered/events",
    ] + [f"{FASTAPI}@{s}/" for s in apps.default_servers("asgi")]
    assert all(t.watch == 5 and t.interval is None and t.profile is None for t in targets[:6])
    assert targets[-1].profile == "sse" and targets[-1].interval is None
    f.write_text('[[target]]\napp = "streamapps.flask_sse:app"\nurl = "http://x/"\n')
    with pytest.raises(pytest.UsageError, match=r"t.toml:3: target 1, key 'url': give url or app, not both"):
        load(f)
    f.write_text('[[target]]\napp = "nosuch:app"\n')
    with pytest.raises(pytest.UsageError, match=r"t.toml:2: target 1, key 'app': no module named 'nosuch'"):
        load(f)


def test_an_interrupted_app_run_leaves_no_server_behind(tmp_path, tagged):
    """The app under waitress, alone and behind nginx: Ctrl-C once all of it runs."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1", STREAMAPPS_COUNT="1000")   # a stream that runs on
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "--app", FLASK, "--app-path", "/events",
                             "--server", "waitress", "--behind", "nginx-unbuffered", "--report-dir", str(tmp_path),
                             "--check", "delivery.progressive", "--watch", "60"],
                            cwd=TESTS, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # the suite, waitress, targets.nginx with its waitress upstream, and nginx
        deadline = time.monotonic() + 30
        while len(processes_tagged(tagged)) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)  # polling /proc: there is no event to wait on
        assert len(processes_tagged(tagged)) >= 5, "the servers did not start"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, out[-2000:]
    assert processes_tagged(tagged) == []


# --- the README's examples ("Test your own app"), as written, on the small apps --------------
# The browser check is left out here (tests/test_browser.py has it); everything else runs.

README = ["browser."]


def test_readme_flask_example(stream_check):
    stream_check(FLASK, path="/events", server="gunicorn-gthread", behind="nginx-unbuffered",
                 concurrent_streams=4, skip_checks=README).assert_ok()


def test_readme_fastapi_example(stream_check):
    stream_check(FASTAPI, path="/good", server="uvicorn", skip_checks=README).assert_ok()


def test_readme_django_example(stream_check):
    stream_check(DJANGO, path="/events", server="gunicorn-gthread", concurrent_streams=4,
                 skip_checks=README).assert_ok()
