"""The server and proxy matrix: every matrix target starts, serves the countdown, and gets the
verdicts its stack really earns (found by running them; the mechanism is noted per row).

All targets run in one ``Run``, side by side, as ``--target all`` runs them, at a 200 ms producer
interval; the concurrency check runs in runs of its own, since its nine streams per target would
otherwise crowd the other targets' timed streams on a small machine. Targets whose program is
missing (nginx) are skipped here with the same hint the suite gives.
"""
import os
import uuid
from pathlib import Path

import pytest

from conformance.checks.catalogue import CHECKS, INFO, load_all
from conformance.engine.run import Options, Run
from conformance.analysis.target import Target
from conformance.targets import launcher, matrix
from conformance.targets.registry import BUILTINS, Builtin
from processes import processes_tagged

load_all()
TIME_SCALE, COUNT = 0.2, 4
MATRIX = [b.name for b in matrix.builtins()]

# The checks judged here: all but the browser, HTTP/2 and HTTP/3 (https only), the large body (none of these
# targets brings one), the chain (no --reference: tests/test_chain.py) and the concurrency check
# (below, in a run of its own).
WIRE = [c for c in CHECKS if not c.startswith("browser.")
        and c not in ("delivery.h2", "delivery.h3", "delivery.large-body", "delivery.concurrent", "delivery.chain")]

HELD = {  # a proxy that holds the small countdown to its end
    "delivery.first-byte": "fail", "delivery.progressive": "fail", "delivery.cadence": "warn",
    "delivery.http10": "warn", "delivery.compressed": "fail",
    "client.httpx": "warn", "client.requests": "warn", "client.node-fetch": "warn",
    # nginx (postpone_output) sends the head with the first body bytes, both at the end
    "delivery.head-early": "warn",
    # the response is complete before the client can go away after its first bytes
    "delivery.disconnect": "skip",
}
NOT_CHUNKED = {"framing.chunked-once": "skip", "framing.no-te-with-cl": "skip", "framing.chunk-syntax": "skip"}

# Verdicts that differ from "every MUST and SHOULD passes, INFO is info". A tuple allows either
# verdict, where the stack's behaviour sits on the check's margin (said why).
DIFFERENCES: dict[str, dict] = {
    # waitress sends the last-chunk "0\r\n\r\n" after the head of a HEAD response that has no
    # Content-Length; closes every response without Content-Length (saying Connection: close);
    # and keeps iterating the app after the client is gone until a write fails: two or three
    # writes, so the disconnect check sits on its margin (at most two).
    "webpy-waitress": {"framing.head-no-body": "fail", "framing.persistent-reuse": "skip",
                       "delivery.disconnect": ("pass", "warn")},
    # the sync worker says Connection: close on every response
    "webpy-gunicorn-sync": {"framing.persistent-reuse": "skip"},
    "webpy-gunicorn-gthread": {},
    # wsgiref answers HTTP/1.0 and ends the body by closing: nothing is chunked, nothing reused
    # (and an HTTP/1.0 response may end by the close)
    "webpy-wsgiref": {**NOT_CHUNKED, "framing.persistent-reuse": "skip", "framing.self-delimited": "skip"},
    # an ASGI server drops send() after a disconnect without telling the app (uvicorn: silently),
    # so a countdown that does not watch receive() for http.disconnect writes on for nobody
    "asgi-uvicorn": {"delivery.disconnect": "warn"},
    "asgi-hypercorn": {"delivery.disconnect": "warn"},
    # nginx's defaults: proxy_buffering on with HTTP/1.0 to the upstream, whose body then ends
    # by close; nginx passes such a body on only when a proxy buffer fills or the upstream ends,
    # and (postpone_output 1460) holds the head with it
    "webpy-nginx": HELD,
    # gzip on adds nothing to that (the body is already held); with Accept-Encoding: gzip it is
    # compressed and held too
    "webpy-nginx-gzip": HELD,
    # unbuffered, nginx notices the client is gone only when a write to it fails, a piece or two
    # after the close: on the check's two-interval margin
    "webpy-nginx-unbuffered": {"delivery.disconnect": ("pass", "warn")},
    # buffering on, but with a chunked upstream nginx passes each chunk on as it is parsed
    "webpy-nginx-http11": {"delivery.disconnect": ("pass", "warn")},
    # unbuffered, every upstream read is flushed through gzip (Z_SYNC_FLUSH): it still streams
    "webpy-nginx-unbuffered-gzip": {"delivery.disconnect": ("pass", "warn")},
    # waitress refuses the seed's hand-set Transfer-Encoding (a hop-by-hop header, PEP 3333)
    # with a 500: nothing can be judged (delivery.disconnect included: its own GET got the 500
    # too, so it is error before it is a skip for the seed's unlogged pieces)
    "webpy-seed-waitress": {**{c: "error" for c in CHECKS},
                            "client.httpx": ("warn", "error"), "client.requests": ("warn", "error"),
                            "client.node-fetch": ("warn", "error")},
}
# delivery.concurrent: nine streams at once (five countdowns, the holder page and its iframes).
# The servers that serialise them fail at any pace; they run at 100 ms, as each stream waits for
# the one before it. The ones that stream them side by side run at 200 ms, for headroom.
CONCURRENT_FAIL = {
    "webpy-gunicorn-sync": "fail",     # one sync worker: one stream at a time
    "webpy-wsgiref": "fail",           # one request at a time
    "webpy-waitress": "fail",          # four threads (waitress's default) for nine streams
    "webpy-gunicorn-gthread": "fail",  # four threads for nine streams
    "webpy-nginx": "fail",             # every stream held to its end
}
CONCURRENT_PASS = {
    "asgi-uvicorn": "pass",
    "asgi-hypercorn": "pass",
    "webpy-nginx-unbuffered": "pass",  # its cheroot upstream has ten threads
}
CONCURRENT = {**CONCURRENT_FAIL, **CONCURRENT_PASS}


def expected(target: str) -> dict:
    base = {c: ("info" if CHECKS[c].level == INFO else "pass") for c in WIRE}
    return {c: v for c, v in {**base, **DIFFERENCES[target]}.items() if c in WIRE}


def judge_all(names, checks, report_dir, scale=TIME_SCALE) -> dict:
    """Start the targets side by side, record what the checks need, judge, stop everything."""
    targets = [Target(n, None, "countdown", BUILTINS[n].interval * scale, COUNT, builtin=n) for n in names]
    run = Run(targets, Options(time_scale=scale, timeout=3.0, report_dir=report_dir))
    for t in run.targets:
        t.scenarios = sorted({CHECKS[c].scenario for c in checks})
    try:
        run.ensure_started()
        judged = {(t.id, c): t.run_check(CHECKS[c]) for t in run.targets for c in checks}
        # the get-compressed scenario's record holds several exchanges: its primary is the GET
        extra = {t.id: {"gzip": getattr(t.recording("get-compressed"), "primary", t.recording("get-compressed"))
                        if "get-compressed" in t.scenarios else None,
                        "skip": t.skip_reason, "stderr": t.server.stderr() if t.server else ""}
                 for t in run.targets}
        return {"judged": judged, "extra": extra}
    finally:
        run.stop()


@pytest.fixture(scope="module")
def wire(tmp_path_factory):
    return judge_all(MATRIX, WIRE, tmp_path_factory.mktemp("matrix"))


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory):
    if "delivery.concurrent" not in CHECKS:
        pytest.skip("no delivery.concurrent check in this catalogue")
    out = judge_all(list(CONCURRENT_FAIL), ["delivery.concurrent"], tmp_path_factory.mktemp("conc-fail"), 0.1)
    more = judge_all(list(CONCURRENT_PASS), ["delivery.concurrent"], tmp_path_factory.mktemp("conc-pass"), 0.2)
    return {k: {**out[k], **more[k]} for k in out}


def _skip_if_missing(result, target):
    if result["extra"][target]["skip"]:
        pytest.skip(result["extra"][target]["skip"])


@pytest.mark.parametrize("target", MATRIX)
def test_matrix_verdicts(wire, target):
    _skip_if_missing(wire, target)
    got = {c: wire["judged"][(target, c)] for c in WIRE}
    wrong = {}
    for c, want in expected(target).items():
        allowed = want if isinstance(want, tuple) else (want,)
        if got[c].verdict not in allowed:
            wrong[c] = f"expected {' or '.join(allowed)}, got {got[c].verdict}: {got[c].observed}"
    assert not wrong, wrong


def test_every_matrix_target_is_in_the_table():
    assert set(DIFFERENCES) == set(MATRIX)
    assert {"webpy-waitress", "webpy-gunicorn-sync", "webpy-gunicorn-gthread", "webpy-wsgiref", "asgi-uvicorn",
            "asgi-hypercorn", "webpy-nginx", "webpy-nginx-unbuffered", "webpy-nginx-gzip",
            "webpy-seed-waitress"} <= set(MATRIX)


@pytest.mark.parametrize("target", ["webpy-nginx-gzip", "webpy-nginx-unbuffered-gzip"])
def test_nginx_gzip_compresses_when_asked(wire, target):
    _skip_if_missing(wire, target)
    rec = wire["extra"][target]["gzip"]
    assert rec is not None and rec.header_values("content-encoding") == ["gzip"]
    # the plain variants never compress
    plain = wire["extra"]["webpy-nginx"]["gzip"]
    assert plain is not None and plain.header_values("content-encoding") == []


def test_the_seed_under_waitress_is_refused_for_its_hop_by_hop_header(wire):
    _skip_if_missing(wire, "webpy-seed-waitress")
    finding = wire["judged"][("webpy-seed-waitress", "framing.complete")]
    assert finding.verdict == "error" and finding.observed.startswith("HTTP 500")
    assert 'Transfer-Encoding is a "hop-by-hop" header' in wire["extra"]["webpy-seed-waitress"]["stderr"]


@pytest.mark.parametrize("target", list(CONCURRENT))
def test_concurrent_streams(concurrent, target):
    _skip_if_missing(concurrent, target)
    finding = concurrent["judged"][(target, "delivery.concurrent")]
    assert finding.verdict == CONCURRENT[target], finding.observed


def test_a_target_whose_program_is_missing_is_skipped_with_the_hint(tmp_path, monkeypatch):
    fake = Builtin("fake-missing", ("no-such-program-xyz", "{address}"), "a target whose program is absent",
                   requires=("program:no-such-program-xyz", "module:no_such_module_xyz"),
                   install_hint="apt-get install no-such-program-xyz")
    monkeypatch.setitem(BUILTINS, fake.name, fake)
    assert fake.missing() == ("no-such-program-xyz, no_such_module_xyz not installed "
                              "(apt-get install no-such-program-xyz)")
    run = Run([Target(fake.name, None, "countdown", 0.1, 3, builtin=fake.name)],
              Options(time_scale=0.1, report_dir=tmp_path))
    run.targets[0].scenarios = ["get"]
    try:
        run.ensure_started()
        finding = run.targets[0].run_check(CHECKS["framing.complete"])
    finally:
        run.stop()
    assert finding.verdict == "skip" and "apt-get install no-such-program-xyz" in finding.observed
    assert run.exit_code() == 5
    doc = run.results_document()
    assert doc["targets"][0]["skipped"].startswith("no-such-program-xyz")
    assert all(BUILTINS[n].missing() is None for n in MATRIX if "nginx" not in n)


def test_nginx_and_its_upstream_are_both_torn_down(monkeypatch):
    b = BUILTINS["webpy-nginx-unbuffered"]
    if b.missing():
        pytest.skip(b.missing())
    tag = f"conformance-matrix-{uuid.uuid4()}"
    monkeypatch.setenv("CONFORMANCE_TEST_TAG", tag)
    server = launcher.start(b.name, list(b.argv), TIME_SCALE)
    try:
        pids = processes_tagged(tag)
        names = {Path(f"/proc/{p}/comm").read_text().strip() for p in pids if os.path.exists(f"/proc/{p}/comm")}
        # the wrapper, the upstream web.py app and nginx (master_process off: one process)
        assert len(pids) >= 3 and "nginx" in names, names
        from conformance.wire.recorder import record
        rec = record(f"{server.base_url}/2", timeout=5)
        assert rec.status == 200 and b"Lift off" in rec.body and rec.header_values("server")[0].startswith("nginx")
    finally:
        server.stop()
    assert processes_tagged(tag) == []
