"""Streams as their clients request them (issue 24): the request from a pasted curl command, the
request budget, LLM stream shapes and their unit metrics, refused first answers, and secrets.

The controls are ``targets/llm.py`` (OpenAI-, Anthropic- and Ollama-shaped endpoints on loopback),
alone or behind Debian's nginx (``targets/nginx.py``); each is judged from the CLI as a user runs
it, with only the curl command, and what reached the server is counted server-side (its
``--count-file``).
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conformance.scenarios.budget import UNSAFE_DEFAULT, make_plan
from conformance.wire.recording import Recording
from conformance.wire.request import RequestError, body_summary, from_options, parse_curl
from conformance.analysis.target import Target
from conformance.analysis.llm_units import ndjson_units, sse_units, unit_metrics
from conformance.targets import launcher, llm
from conformance.targets.nginx import find_nginx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "sk-test-bearer-7f3a9c"
BODY_KEY = "sk-body-key-51d2e8"
BODY = json.dumps({"model": "control", "stream": True, "api_key": BODY_KEY,
                   "messages": [{"role": "user", "content": "Say something"}]})
needs_nginx = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (apt-get install nginx)")


# --- the request -------------------------------------------------------------------------------

def test_a_pasted_curl_command_is_the_request():
    req = parse_curl("""curl -sN https://api.example.org/v1/chat/completions \\
      -H "Authorization: Bearer sk-1" \\
      -H 'Content-Type: application/json' \\
      -d '{"model": "m", "stream": true}' --compressed -k""")
    assert req.url == "https://api.example.org/v1/chat/completions"
    assert req.method == "POST" and req.body == b'{"model": "m", "stream": true}'
    assert ("Authorization", "Bearer sk-1") in req.headers and req.insecure
    assert "Authorization" in req.secret_names and "Content-Type" not in req.secret_names


def test_curl_forms_map_as_curl_sends_them(tmp_path):
    (tmp_path / "q.json").write_text('{"prompt": "hi"}\n')
    req = parse_curl(f"curl -XPUT http://h/x --json @{tmp_path / 'q.json'} -u alice:pw")
    assert req.method == "PUT" and req.body == b'{"prompt": "hi"}\n'
    assert ("Content-Type", "application/json") in req.headers and ("Accept", "application/json") in req.headers
    assert ("Authorization", "Basic YWxpY2U6cHc=") in req.headers
    assert parse_curl("http://h/x --data-raw @literal").body == b"@literal"
    assert parse_curl("curl http://h/x -d a=1 -d b=2").body == b"a=1&b=2"


@pytest.mark.parametrize("flag", ["--proxy http://p:3128", "-F file=@x", "-G", "--unix-socket /s"])
def test_a_curl_option_that_cannot_be_mapped_is_named(flag):
    with pytest.raises(RequestError, match=flag.split()[0]):
        parse_curl(f"curl http://h/x {flag}")


def test_an_unmappable_curl_option_is_a_usage_error_before_anything_is_sent(tmp_path):
    out = cli("--curl", "curl http://127.0.0.1:9/x --proxy http://p:3128", "--report-dir", str(tmp_path))
    assert out.returncode == 4, out.stdout + out.stderr
    assert "--proxy" in out.stdout + out.stderr


def test_options_build_the_request():
    req = from_options(None, [], ['{"a": 1}'], [])
    assert req.method == "POST" and ("Content-Type", "application/json") in req.headers
    assert from_options("PATCH", ["x=1"], [], []).method == "PATCH"
    with pytest.raises(RequestError):
        from_options(None, [], ["{not json"], [])


def test_the_body_is_kept_as_size_hash_and_redacted_head():
    body = json.dumps({"model": "m", "api_key": "s3cr3t", "auth": {"password": "pw", "user": "u"}}).encode()
    d = body_summary(body, "application/json")
    assert d["body_bytes"] == len(body) and len(d["body_sha256"]) == 64
    assert "s3cr3t" not in d["body_head"] and "pw" not in d["body_head"] and '"user": "u"' in d["body_head"]
    assert body_summary(b"token=tk9&x=1", "application/x-www-form-urlencoded")["body_head"] == "token=<redacted>&x=1"


# --- the budget --------------------------------------------------------------------------------

SCENARIOS = ["get", "get-http10", "head", "get-compressed", "concurrent", "disconnect", "httpx", "requests",
             "node-fetch", "browser"]


def test_an_unsafe_method_gets_a_small_default_budget_and_head_is_not_sent():
    t = Target("t", "http://h/x", None, None, method="POST", body=b"{}")
    plan = make_plan(t, SCENARIOS)
    sent = [r.scenario for r in plan.rows if r.sent and r.requests]   # a remote target's disconnect sends nothing
    assert plan.budget == UNSAFE_DEFAULT and plan.total == UNSAFE_DEFAULT
    assert sent == ["get", "get-compressed", "httpx"]
    assert plan.excluded()["requests"] == f"over the request budget (--max-requests {UNSAFE_DEFAULT})"
    assert "not sent" in plan.excluded()["head"]
    assert any("RFC 9110 §9.2.1" in line for line in plan.lines())


def test_get_has_no_budget_unless_asked():
    t = Target("t", "http://h/x", None, None)
    assert make_plan(t, SCENARIOS).budget is None and not make_plan(t, SCENARIOS).excluded()
    plan = make_plan(replace(t, max_requests=4), SCENARIOS)
    assert plan.total <= 4 and "get" not in plan.excluded()


# --- units -------------------------------------------------------------------------------------

def body_of(schedule) -> bytes:
    return b"".join(data for _, data in schedule)


def test_llm_units_are_deltas_that_carry_content():
    assert sse_units(body_of(llm.openai_units(30))) == ("openai", sse_units(body_of(llm.openai_units(30)))[1])
    assert len(sse_units(body_of(llm.openai_units(30)))[1]) == 30          # not the role chunk, finish, [DONE]
    shape, ends = sse_units(body_of(llm.anthropic_units(8)))
    assert shape == "anthropic" and len(ends) == 8                         # pings and comments are not units
    shape, ends = ndjson_units(body_of(llm.ollama_units(20)), ended=True)
    assert shape == "ollama" and len(ends) == 20                           # the "done": true line is not
    assert sse_units(b"data: a\n\n: c\n\ndata: b\n\n") == ("sse", [8, 22])


def recording_of(reads: list[tuple[float, bytes]]) -> Recording:
    """A recording whose body arrived in these reads (time, bytes)."""
    rec = Recording("get", "http://h/", status=200)
    body = b""
    for t, data in reads:
        rec.pieces.add(t, len(body), len(data))
        body += data
    rec.body_kept, rec.body_bytes, rec.end = body.decode("latin-1"), len(body), "complete"
    return rec


def test_units_merged_counts_units_that_arrived_in_the_read_before_theirs():
    events = [data for _, data in llm.openai_units(6)]   # role, 6 deltas, finish, [DONE]
    spread = recording_of([(0.1 * i, e) for i, e in enumerate(events)])
    m = unit_metrics(spread, "sse")
    assert m["unit_count"] == 6 and m["units_merged"] == 0 and m["first_unit_s"] == pytest.approx(0.1)
    assert m["gap_p50_s"] == pytest.approx(0.1) and m["units_per_s"] == pytest.approx(10)
    held = recording_of([(0.5, b"".join(events[:5])), (0.9, b"".join(events[5:]))])   # a coalescing hop
    m = unit_metrics(held, "sse")
    assert m["unit_count"] == 6 and m["units_merged"] == 4 and m["gap_max_s"] == pytest.approx(0.4)
    assert m["units_per_s"] is None   # two reads: no rate (the reader's speed, not the stream's)
    at_once = recording_of([(5.4, events[0]), (5.40015, b"".join(events[1:]))])   # a held stream, read at once
    assert unit_metrics(at_once, "sse")["units_per_s"] is None


def test_parsed_messages_microseconds_apart_count_as_merged():
    """Chromium's network view of an EventSource is its parsed messages, each timed as the parser
    handed it on (a held stream's 40 events: 5.71855 to 5.7197 s, measured): within
    PARSED_TOGETHER_S they count as merged, as units of one read do; a stream's own gaps do not."""
    from conformance.analysis.llm_units import PARSED_TOGETHER_S
    events = [data for _, data in llm.openai_units(6)]
    parsed = recording_of([(5.71855 + 0.00006 * i, e) for i, e in enumerate(events)])
    assert unit_metrics(parsed, "sse")["units_merged"] == 0                             # as reads: distinct
    assert unit_metrics(parsed, "sse", PARSED_TOGETHER_S)["units_merged"] == 5           # as parsed messages
    spread = recording_of([(0.02 * i, e) for i, e in enumerate(events)])               # 20 ms apart
    assert unit_metrics(spread, "sse", PARSED_TOGETHER_S)["units_merged"] == 0


# --- the controls, judged from the CLI ----------------------------------------------------------

def cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def start(tmp_path, shape: str, *extra: str, front: str | None = None):
    counts = tmp_path / f"{shape}-{front or 'direct'}-count.txt"
    argv = ["{python}", "-m", "conformance.targets.llm", shape, "{upstream_address}" if front else "{address}",
            "--count-file", str(counts), *extra]
    if front:
        argv = ["{python}", "-m", "conformance.targets.nginx", front, "{address}", "--"] + \
               [sys.executable if a == "{python}" else a for a in argv]
    running = launcher.start(f"llm-{shape}", argv)
    return running, counts


@pytest.fixture
def server(tmp_path):
    started = []

    def make(shape, *extra, front=None):
        running, counts = start(tmp_path, shape, *extra, front=front)
        started.append(running)
        return f"{running.base_url}{llm.PATHS[shape]}", counts
    yield make
    for r in started:
        r.stop()


def requests_seen(counts: Path) -> list[str]:
    return [line.split()[0] for line in counts.read_text().splitlines()] if counts.exists() else []


def curl(url: str, token: str | None = TOKEN) -> str:
    auth = f"-H 'Authorization: Bearer {token}' " if token else ""
    return f"curl -N {url} {auth}-H 'Content-Type: application/json' -d '{BODY}'"


def judged(tmp_path, *args):
    out = cli(*args, "--report-dir", str(tmp_path / "report"))
    results = tmp_path / "report" / "results.json"
    doc = json.loads(results.read_text()) if results.exists() else {}
    return out, doc


def verdict(doc, check):
    return next(r for r in doc["results"] if r["check"] == check)


def test_openai_endpoint_streams_from_its_curl_command_every_client_included(server, tmp_path):
    url, counts = server("openai", "--token", TOKEN)
    out, doc = judged(tmp_path, "--curl", curl(url), "--max-requests", "20")
    assert out.returncode == 0, out.stdout[-3000:]
    for check in ("delivery.progressive", "client.httpx", "client.requests", "client.node-fetch"):
        r = verdict(doc, check)
        if r["verdict"] == "skip":   # node not installed
            continue
        m = r["metrics"]
        # the raw recorder reads as deltas come; a client's own transport (Node's event loop, a
        # thread) also joins them. Deltas written 20 ms apart may share a read when the machine is
        # busy: CI saw the raw recorder merge one (other engines' tests beside it), so both may merge 2.
        merged_at_most = 2
        assert r["verdict"] == "pass" and m["unit_count"] == 30 and m["units_merged"] <= merged_at_most, (check, r)
        assert 0 < m["first_unit_s"] < 1 and 0.015 < m["gap_p50_s"] < 0.21 and m["gap_max_s"] < 0.5, (check, m)
    assert "first" in out.stdout and "merged 0" in out.stdout
    plan = doc["targets"][0]["plan"]
    seen = requests_seen(counts)
    assert seen.count("POST") == plan["total"] and set(seen) <= {"POST", "OPTIONS"}, (seen, plan)
    assert verdict(doc, "framing.head-supported")["verdict"] == "skip"


def test_openai_endpoint_without_its_token_is_one_clear_line_exit_6(server, tmp_path):
    url, counts = server("openai", "--token", TOKEN)
    out, doc = judged(tmp_path, "--curl", curl(url, token=None))
    assert out.returncode == 6
    lines = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1 and "401" in lines[0] and "Authorization" in lines[0], out.stdout[-2000:]
    assert requests_seen(counts) == ["POST"]   # a refused POST is not sent again


@needs_nginx
def test_openai_behind_nginx_defaults_is_held_by_nginx(server, tmp_path):
    url, _ = server("openai", "--token", TOKEN, front="default")
    out, doc = judged(tmp_path, "--curl", curl(url))
    assert out.returncode == 1, out.stdout[-3000:]
    assert verdict(doc, "delivery.progressive")["verdict"] == "fail"
    causes = doc["targets"][0]["diagnosis"]
    assert any(c["hop"].startswith("nginx") or "nginx" in c["hop"] for c in causes), causes
    assert any("proxy_buffering off" in c["fix"] for c in causes), causes
    m = verdict(doc, "delivery.progressive")["metrics"]
    assert m["unit_count"] == 30 and m["units_merged"] >= 25, m   # the coalescing hop, in figures


@needs_nginx
def test_openai_behind_nginx_unbuffered_streams(server, tmp_path):
    url, _ = server("openai", "--token", TOKEN, front="unbuffered")
    out, doc = judged(tmp_path, "--curl", curl(url), "--check", "delivery.progressive")
    assert out.returncode == 0, out.stdout[-3000:]
    assert verdict(doc, "delivery.progressive")["metrics"]["units_merged"] <= 3


def test_openai_written_at_the_end_fails(server, tmp_path):
    url, _ = server("openai", "--token", TOKEN, "--at-end")
    out, doc = judged(tmp_path, "--curl", curl(url), "--check", "delivery.progressive")
    assert out.returncode == 1, out.stdout[-3000:]
    assert verdict(doc, "delivery.progressive")["verdict"] == "fail"
    assert verdict(doc, "delivery.progressive")["metrics"]["units_merged"] == 29


def test_anthropic_pings_are_not_units(server, tmp_path):
    url, _ = server("anthropic", "--units", "8")
    out, doc = judged(tmp_path, "--curl", f"curl {url} -H 'x-api-key: k' --json '{BODY}'", "--check", "delivery.progressive")
    assert out.returncode == 0, out.stdout[-3000:]
    m = verdict(doc, "delivery.progressive")["metrics"]
    assert m["unit_shape"] == "anthropic" and m["unit_count"] == 8 and m["gap_p50_s"] > 0.3, m


def test_ollama_ndjson_streams(server, tmp_path):
    url, _ = server("ollama", "--units", "20")
    out, doc = judged(tmp_path, "--curl", f"curl {url} -d '{{\"model\": \"m\", \"prompt\": \"hi\"}}'",
                      "--check", "delivery.progressive")
    assert out.returncode == 0, out.stdout[-3000:]
    m = verdict(doc, "delivery.progressive")["metrics"]
    assert m["unit_shape"] == "ollama" and m["unit_count"] == 20 and m["units_merged"] == 0, m


@needs_nginx
def test_ollama_held_by_nginx_buffer_fails(server, tmp_path):
    url, _ = server("ollama", "--units", "20", front="default")
    out, doc = judged(tmp_path, "--curl", f"curl {url} -d '{{\"model\": \"m\", \"prompt\": \"hi\"}}'",
                      "--check", "delivery.progressive")
    assert out.returncode == 1, out.stdout[-3000:]
    assert verdict(doc, "delivery.progressive")["verdict"] == "fail"


def test_a_post_only_endpoint_asked_with_get_says_allow_post_in_one_line(server, tmp_path):
    url, counts = server("openai")
    # WebKit and Firefox left out (tests/test_engines.py has theirs): Firefox's page waits about
    # 50 s for a body a 405 does not have
    out, doc = judged(tmp_path, url, "--skip-check", "browser.progressive-render.")
    assert out.returncode == 6
    lines = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, out.stdout[-3000:]
    assert "405" in lines[0] and "Allow: POST" in lines[0] and "-X POST" in lines[0] and "--curl" in lines[0]


def test_max_requests_3_sends_exactly_3_posts_and_the_rest_skip(server, tmp_path):
    url, counts = server("openai", "--token", TOKEN)
    out, doc = judged(tmp_path, "--curl", curl(url), "--max-requests", "3")
    assert out.returncode == 0, out.stdout[-3000:]
    assert requests_seen(counts).count("POST") == 3, requests_seen(counts)
    assert "budget 3 requests (--max-requests 3)" in out.stdout and "total              3" in out.stdout
    assert doc["targets"][0]["plan"]["total"] == 3
    skipped = [r for r in doc["results"] if r["observed"] == "over the request budget (--max-requests 3)"]
    assert {r["check"] for r in skipped} >= {"client.requests", "delivery.concurrent", "delivery.http10"}
    # and no secret reached anything under the report dir
    for path in (tmp_path / "report").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert TOKEN.encode() not in text and BODY_KEY.encode() not in text, path
    request = doc["targets"][0]["request"]
    assert request["method"] == "POST" and request["body_bytes"] == len(BODY) and "<redacted>" in request["body_head"]


def test_the_default_budget_for_post_is_printed_and_held(server, tmp_path):
    url, counts = server("openai", "--token", TOKEN)
    out = cli("--curl", curl(url), "--plan", "--report-dir", str(tmp_path / "plan"))
    assert out.returncode == 0 and not requests_seen(counts)   # --plan sends nothing
    assert f"budget {UNSAFE_DEFAULT} requests: the default for POST" in out.stdout
    out, doc = judged(tmp_path, "--curl", curl(url))
    assert requests_seen(counts).count("POST") == UNSAFE_DEFAULT
    assert f"budget {UNSAFE_DEFAULT} requests: the default for POST" in out.stdout


def test_stream_check_takes_the_request(server, stream_check):
    url, counts = server("openai", "--token", TOKEN)
    found = stream_check(url, json={"model": "m", "stream": True}, headers={"Authorization": f"Bearer {TOKEN}"},
                         checks=["delivery.progressive", "client.httpx", "framing.head-supported"])
    found.assert_ok()
    assert found.verdict("delivery.progressive") == "pass" and found.verdict("framing.head-supported") == "skip"
    progressive = next(f for f in found if f.check == "delivery.progressive")
    assert progressive.metrics["unit_count"] == 30 and progressive.metrics["units_merged"] == 0
    assert requests_seen(counts) == ["POST", "POST"]


def test_a_pasted_command_names_its_key_by_environment_variable(monkeypatch):
    monkeypatch.setenv("LLM_TEST_KEY", "sk-env-1")
    req = parse_curl("curl http://h/x -H \"Authorization: Bearer $LLM_TEST_KEY\" -H 'X-Other: ${NOT_SET_HERE_42}'")
    assert ("Authorization", "Bearer sk-env-1") in req.headers and ("X-Other", "${NOT_SET_HERE_42}") in req.headers


def test_short_options_and_a_targets_file_send_the_same_request(server, tmp_path):
    url, counts = server("openai", "--token", TOKEN)
    (tmp_path / "request.json").write_text(BODY)
    out, doc = judged(tmp_path, url, "-X", "POST", "--json", f"@{tmp_path / 'request.json'}",
                      "-H", f"Authorization: Bearer {TOKEN}", "--check", "delivery.progressive")
    assert out.returncode == 0, out.stdout[-3000:]
    assert doc["targets"][0]["request"]["body_sha256"] == __import__("hashlib").sha256(BODY.encode()).hexdigest()
    (tmp_path / "targets.toml").write_text(f'''
[[target]]
id = "chat"
url = "{url}"
headers = {{ Authorization = "Bearer {TOKEN}" }}
json = {{ model = "m", stream = true, messages = [{{ role = "user", content = "Hi" }}] }}
''')
    out, doc = judged(tmp_path, "--targets-file", str(tmp_path / "targets.toml"), "--check", "delivery.progressive",
                      "--check", "client.httpx")
    assert out.returncode == 0, out.stdout[-3000:]
    assert doc["targets"][0]["request"]["method"] == "POST"
    assert requests_seen(counts) == ["POST"] * 3


def test_cadence_of_a_fast_stream_without_a_schedule_is_continuous_not_stalled():
    from conformance.checks.catalogue import CHECKS, load_all
    load_all()
    events = [data for _, data in llm.openai_units(40)]
    fast = recording_of([(0.05 + 0.05 * i, e) for i, e in enumerate(events)])   # tokens 50 ms apart
    fast.connect_s = 0.0001
    target = Target("t", "http://h/x", "sse", None)
    assert CHECKS["delivery.cadence"].judge(fast, target).verdict == "pass"
    held = recording_of([(2.5, b"".join(events))])   # all at once after 2.5 s: one release, a dump
    held.connect_s = 0.0001
    assert CHECKS["delivery.cadence"].judge(held, Target("t", "http://h/x", "sse", None)).verdict == "warn"
