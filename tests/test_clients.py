"""The client checks (client.httpx, client.requests, client.node-fetch) on the controls made for
them, at their own pace (``targets/client_controls.py``; the SSE gaps are 20-250 ms, so these
run at time scale 1), and what each finding says:

- SSE, 40 events at random gaps: every client passes;
- the same 40 events held to the end: every client not pass, and the finding says the server
  holds it (the raw recorder's GET is held as well);
- NDJSON small lines in a body delimited by the close: requests' default ``iter_lines()`` waits
  for 512 bytes: not pass, and the finding says it is the client and names the setting; httpx
  and Node's fetch pass;
- gzip when asked, the whole body held, identity streams (``control-gzip-buffered``): the clients
  (which all ask for gzip by default) not pass, and the finding says the hold is under gzip.

Every other control's client verdicts are in ``verdicts.py`` (``test_verdicts.py``).
"""
import pytest

from conformance.checks.catalogue import CHECKS, load_all
from conformance.scenarios.clients import ClientRun, record_node_fetch, replay_wire, _WireLog
from conformance.checks._judging import explain, header_fault
from conformance.wire.recording import Recording
from conformance.engine.run import Options, Run
from conformance.scenarios.base import Context
from conformance.analysis.target import Target
from conformance.targets.registry import BUILTINS

load_all()
CLIENTS = ("client.httpx", "client.requests", "client.node-fetch")
TARGETS = ("control-client-sse", "control-client-sse-held", "control-client-ndjson-close", "control-gzip-buffered")
GZIP_COUNT = 3   # control-gzip-buffered at the seed's 1 s pace: a 4 s countdown


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    targets = []
    for name in TARGETS:
        b = BUILTINS[name]
        count = GZIP_COUNT if b.profile == "countdown" else None
        targets.append(Target(name, None, b.profile, b.interval, count, builtin=name))
    run = Run(targets, Options(time_scale=1.0, report_dir=tmp_path_factory.mktemp("report")))
    checks = CLIENTS + ("delivery.progressive",)
    for t in run.targets:
        t.scenarios = list({CHECKS[c].scenario for c in checks})
    try:
        run.ensure_started()
        yield {(t.id, c): t.run_check(CHECKS[c]) for t in run.targets for c in checks}
    finally:
        run.stop()


def verdicts(judged, target):
    return {c: judged[(target, c)].verdict for c in CLIENTS}


def test_sse_random_gaps_every_client_passes(judged):
    assert judged[("control-client-sse", "delivery.progressive")].verdict == "pass"
    assert verdicts(judged, "control-client-sse") == dict.fromkeys(CLIENTS, "pass"), \
        {c: judged[("control-client-sse", c)].observed for c in CLIENTS}
    for c in CLIENTS:
        f = judged[("control-client-sse", c)]
        assert "40 events reached the caller on time" in f.observed
        assert f.metrics["bursts"] == 40 or f.metrics["largest_burst_writes"] <= f.metrics["allowed_per_burst"]
        assert "lag_vs_raw_median_s" in f.metrics


def test_sse_held_every_client_not_pass(judged):
    assert judged[("control-client-sse-held", "delivery.progressive")].verdict == "fail"
    assert verdicts(judged, "control-client-sse-held") == dict.fromkeys(CLIENTS, "warn")
    for c in CLIENTS:
        observed = judged[("control-client-sse-held", c)].observed
        assert "40 events held" in observed and "the raw recorder's GET is held as well" in observed, observed


def test_ndjson_requests_default_read_size_is_the_client(judged):
    assert judged[("control-client-ndjson-close", "delivery.progressive")].verdict == "pass"
    assert verdicts(judged, "control-client-ndjson-close") == {
        "client.httpx": "pass", "client.requests": "warn", "client.node-fetch": "pass"}
    f = judged[("control-client-ndjson-close", "client.requests")]
    assert "the client holds it, not the server" in f.observed
    assert "chunk_size=512" in f.observed and "iter_lines(chunk_size=1)" in f.observed
    assert f.metrics["client_hold_max_s"] > 1.0   # the socket had each line long before the caller


def test_gzip_held_identity_streams_is_said_to_be_under_gzip(judged):
    assert verdicts(judged, "control-gzip-buffered") == dict.fromkeys(CLIENTS, "warn")
    for c in ("client.httpx", "client.requests"):
        observed = judged[("control-gzip-buffered", c)].observed
        assert "the hold is under gzip" in observed, observed
        assert "Accept-Encoding: identity (the raw recorder's GET) streams" in observed, observed
        assert judged[("control-gzip-buffered", c)].metrics["content_encoding"] == "gzip"


def test_node_missing_is_a_skip_with_the_install_hint(monkeypatch):
    monkeypatch.setattr("conformance.scenarios.clients.node_program", lambda: None)
    target = Target("t", "http://127.0.0.1:9/", "bytes")
    run = record_node_fetch(Context(target, target.url, 1.0, 5.0))
    finding = CHECKS["client.node-fetch"].judge(run, target)
    assert finding.verdict == "skip" and "apt-get install nodejs" in finding.observed


def test_client_errors_name_the_framing_fault():
    rec = Recording("httpx", "http://x/", headers=[["Transfer-Encoding", "chunked, chunked"]])
    assert header_fault(rec).startswith("framing.chunked-once")
    rec.headers = [["Content-Encoding", "gzip"], ["Transfer-Encoding", "chunked"]]
    assert "Content-Encoding: gzip" in explain("DecodingError: Error -3 while decompressing data", rec)
    assert explain("TypeError: terminated (cause: HPE_INVALID_CHUNK_SIZE: ...)").startswith("framing.chunk-syntax")
    assert explain("ChunkedEncodingError: Response ended prematurely").startswith("framing.complete")


def test_wire_replay_of_a_close_delimited_body():
    log = _WireLog()
    log.read(10.0, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    log.read(10.1, b'{"n": 1}\n')
    log.read(10.3, b'{"n": 2}\n')
    rec = replay_wire(log, 10.0, "http://x/", closed=True)
    assert [(round(p.t, 3), p.size) for p in rec.pieces] == [(0.1, 9), (0.3, 9)]
    assert rec.framing == "close" and rec.end == "complete" and rec.body.count(b"\n") == 2
    assert isinstance(ClientRun("requests", "r", "api", rec).to_dict()["client"], dict)


def test_report_shows_the_client_matrix(tmp_path):
    """report.html: a row per client with its lag per event behind the raw recorder; what the
    server controls (here, a client recording's fields) is escaped."""
    import json

    from conformance.report.html import render
    (tmp_path / "recordings").mkdir()
    rec = Recording("requests", "http://x/ndjson", status=200, end="complete").to_dict()
    rec["client"] = {"name": "requests <script>", "api": "iter_lines()", "skip": None, "hint": "",
                     "event_times": {"caller": [0.5, 0.5, 0.5], "raw": [0.1, 0.2, 0.3]}}
    (tmp_path / "recordings" / "t-requests.json").write_text(json.dumps(rec))
    result = {"target": "t", "check": "client.requests", "level": "SHOULD", "verdict": "warn", "spec": "s",
              "requirement": "r", "observed": "o", "metrics": {}, "recording": "recordings/t-requests.json"}
    (tmp_path / "results.json").write_text(json.dumps({"schema": 1, "targets": [{"id": "t", "url": "http://x/"}],
                                                       "results": [result]}))
    page = render(tmp_path)
    assert "Clients as users run them" in page and "requests &lt;script&gt;" in page
    assert "<td>+400</td><td>+300</td><td>+200</td>" in page and "300 / 400" in page
