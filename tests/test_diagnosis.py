"""The diagnosis on synthetic findings: each piece of evidence one run has, on a holding case and
its fix, and the known-culprits table validated against its schema.

Live: tests/test_chains.py (the built-in chains), tests/test_streams.py (held, buffered, gzip).
"""
import json

import jsonschema
import pytest

from conformance.engine.diagnosis import (CULPRITS, SCHEMA, Evidence, culprit_for, diagnose, fixed_delay, load_table,
                                   release_size)


def result(check, verdict, observed="", **metrics):
    return {"target": "t", "check": check, "verdict": verdict, "observed": observed, "metrics": metrics}


HELD = [result("delivery.first-byte", "fail", "first body byte 4001 ms after the request"),
        result("delivery.progressive", "fail", "5 events arrived in 1 bursts"),
        result("client.httpx", "warn", "arrived in 1 burst")]
STREAMS = [result("delivery.first-byte", "pass"), result("delivery.progressive", "pass")]
CHAIN_HELD = result("delivery.chain", "fail", "identity: the chain held them median 2001 ms", ok=False, compressed_ok=False,
                    max_held_ms=4001.0, median_held_ms=2001.0, held_ms=[4001.0, 3001.0, 2001.0, 1001.0, 1.0],
                    compressed_max_held_ms=4001.0, compressed_median_held_ms=2001.0, limit_ms=500.0)
CHAIN_OK = result("delivery.chain", "pass", "identity: held median 0 ms", ok=True, compressed_ok=True,
                  held_ms=[0.1, 0.2, 0.1], limit_ms=500.0)


# --- the table ------------------------------------------------------------------------------------

def test_the_culprits_table_is_valid():
    table = load_table()
    jsonschema.validate(table, json.loads(SCHEMA.read_text()))
    for c in table["culprit"]:
        assert c["cause"] in table["kind"], c
    assert set(table["kind"]) == set(json.loads(SCHEMA.read_text())["$defs"]["cause"]["enum"])


def test_the_schema_refuses_a_culprit_without_evidence_or_source():
    schema = json.loads(SCHEMA.read_text())
    table = load_table(CULPRITS)
    bad = dict(table, culprit=[{"cause": "held", "hop": "x", "fix": "y", "source": "https://example.org"}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = dict(table, culprit=[{"cause": "held", "match": {"server": "x"}, "hop": "x", "fix": "y", "source": "ftp://x"}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = dict(table, culprit=[{"cause": "held", "signs": ["made-up"], "hop": "x", "fix": "y", "source": "https://x"}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --- headers: a guess, worded as one --------------------------------------------------------------

def test_a_header_names_the_hop_as_a_guess():
    [c] = diagnose([dict(r) for r in HELD], [["Server", "nginx/1.22.1"]])
    assert c.certainty == "guess" and c.hop.startswith("likely nginx (proxy_buffering")
    assert "a guess from Server: nginx/1.22.1" in c.hop and "--reference" in c.hop
    assert "proxy_buffering off" in c.fix and c.source.startswith("https://nginx.org/")
    assert c.explains == ["delivery.first-byte", "delivery.progressive", "client.httpx"]


def test_no_header_no_guess():
    [c] = diagnose([dict(r) for r in HELD], [["Server", "cheroot"]])
    assert c.hop.startswith("not known from the headers (Server: cheroot)") and c.source == ""


@pytest.mark.parametrize("headers, hop", [
    ([["Via", "1.1 varnish (Varnish/7.1)"], ["X-Varnish", "3"]], "Varnish (do_stream off, do_gzip on"),
    ([["cf-ray", "8a1b2c3d4e5f-AMS"]], "Cloudflare (response buffering"),
    ([["X-Cache", "MISS from proxy"]], "a caching proxy or CDN (X-Cache)"),
    ([["Server", "Caddy"]], "Caddy (reverse_proxy buffer_responses"),
    ([["Server", "Apache/2.4.71 (Debian)"]], "Apache httpd (mod_proxy_fcgi"),
])
def test_each_hint_header_points_at_its_hop(headers, hop):
    [c] = diagnose([dict(r) for r in HELD], headers)
    assert c.hop.startswith(f"likely {hop}"), c.hop


# --- --reference: certain ---------------------------------------------------------------------------

def test_delivery_chain_failing_makes_the_hop_certain():
    results = [dict(r) for r in HELD + [CHAIN_HELD]]
    [c] = diagnose(results, evidence=Evidence(headers=[["Server", "nginx/1.22.1"]], reference="http://origin/sse/5"))
    assert c.certainty == "certain" and "likely" not in c.hop
    assert c.hop.startswith("nginx (proxy_buffering") and "certain: the hold is measured between the origin (http://origin/sse/5)" in c.hop
    assert "Server: nginx/1.22.1 names the hop" in c.hop and "delivery.chain" in c.explains


def test_delivery_chain_passing_leaves_a_guess():
    results = [dict(r) for r in HELD + [CHAIN_OK]]
    [c] = diagnose(results, evidence=Evidence(headers=[["Server", "nginx"]], reference="http://origin/"))
    assert c.certainty == "guess" and c.hop.startswith("likely")


def test_a_fixed_delay_only_the_chain_shows():
    chain = result("delivery.chain", "fail", "identity: held median 205 ms", ok=False, compressed_ok=False,
                   held_ms=[201.0, 205.0, 206.0, 204.0, 0.5], median_held_ms=205.0, max_held_ms=206.0,
                   compressed_held_ms=[200.0, 204.0, 205.0, 203.0, 0.5], compressed_median_held_ms=204.0, limit_ms=150.0)
    lower = [["content-type", "text/event-stream"], ["transfer-encoding", "chunked"], ["server", "conformance-probe"]]
    [c] = diagnose(STREAMS + [chain], evidence=Evidence(headers=lower, http_version="1.1", reference="http://o/"))
    assert c.kind == "delay" and c.certainty == "certain" and "about 204 ms" in c.cause
    assert c.hop.startswith("HAProxy without option http-no-delay") and "header name is in lower case" in c.hop
    assert "option http-no-delay" in c.fix and c.explains == ["delivery.chain"]
    # the same delay with the app's own header capitals: a guess at any hop that corks
    capital = [["Content-Type", "text/event-stream"], ["Transfer-Encoding", "chunked"], ["Server", "x"]]
    [c] = diagnose(STREAMS + [dict(chain)], evidence=Evidence(headers=capital, http_version="1.1", reference="http://o/"))
    assert c.hop.startswith("a hop that sends with MSG_MORE")


def test_fixed_delay_and_release_size():
    assert fixed_delay([201, 205, 206, 204, 0.5]) == 204.5
    assert fixed_delay([1200, 900, 600, 300, 0]) is None     # held to the end, not a fixed delay
    assert fixed_delay([2, 1, 3, 0]) is None                  # noise
    assert release_size([4096, 4096, 4096, 1200]) == 4096
    assert release_size([8192, 300]) == 8192                  # one release, a buffer's size
    assert release_size([130, 130, 300]) is None             # events, not a buffer
    assert release_size([3000, 3000, 10]) == 3000
    assert release_size([100, 900, 4000, 50]) is None


# --- compression only ---------------------------------------------------------------------------

def test_a_hold_only_under_compression_is_one_cause_at_that_hop():
    comp = result("delivery.compressed", "fail", "gzip: 5 events arrived in 1 bursts", content_encoding="gzip",
                  held_only_compressed=True)
    results = STREAMS + [comp, result("client.httpx", "warn", "1 burst")]
    [c] = diagnose([dict(r) for r in results], [["Server", "nginx"]])
    assert c.kind == "compression" and "only under compression (gzip)" in c.cause
    assert c.hop.startswith("likely nginx (gzip module)") and c.explains == ["delivery.compressed", "client.httpx"]
    chain = result("delivery.chain", "fail", "", ok=True, compressed_ok=False, compressed_median_held_ms=600.0,
                   compressed_max_held_ms=1200.0, limit_ms=150.0)
    [c] = diagnose([dict(r) for r in results] + [chain], evidence=Evidence(headers=[["Server", "Caddy"]],
                                                                          reference="http://o/"))
    assert c.certainty == "certain" and c.hop.startswith("Caddy (encode") and "compressed" in c.hop


# --- HTTP/1.1 held over TLS while HTTP/2 streams: one cause --------------------------------------

def test_held_over_http11_while_h2_streams_is_one_cause():
    h2 = result("delivery.h2", "pass", "HTTP/2: 5 events arrived in 5 bursts")
    results = [dict(r) for r in HELD] + [h2]
    [c] = diagnose(results, evidence=Evidence(headers=[["Server", "nginx"]], tls=True, http_version="1.1"))
    assert c.kind == "h1-only" and "HTTP/1.1 (TLS) only" in c.cause and "HTTP/2 to the same endpoint streams" in c.cause
    assert "delivery.h2: HTTP/2: 5 events arrived in 5 bursts" in c.evidence
    assert c.hop.startswith("likely nginx (its HTTP/1.1 path")
    # the fix: h2 and HTTP/1.1 both stream, no cause; h2 held too: the ordinary hold, not h1-only
    assert diagnose(STREAMS + [h2], evidence=Evidence(tls=True)) == []
    [c] = diagnose([dict(r) for r in HELD] + [result("delivery.h2", "warn", "held")],
                   evidence=Evidence(headers=[["Server", "nginx"]], tls=True))
    assert c.kind == "held" and "delivery.h2" in c.explains


# --- an HTTP/1.0-style upstream behind a proxy ------------------------------------------------------

def test_a_close_delimited_body_behind_a_proxy_names_the_upstream():
    selfdel = result("framing.self-delimited", "warn", "HTTP/1.1 response delimited by close")
    lower = [["content-type", "text/html"], ["date", "x"], ["server", "WSGIServer/0.2"]]
    [c] = diagnose(STREAMS + [selfdel], evidence=Evidence(headers=lower, framing="close", http_version="1.1"))
    assert c.kind == "http10-upstream" and "HTTP/1.0-style" in c.cause
    assert c.hop.startswith("likely HAProxy passing on an HTTP/1.0 server's close-delimited body")
    [c] = diagnose(STREAMS + [dict(selfdel)], evidence=Evidence(headers=[["Via", "1.1 proxy"]], framing="close",
                                                                reference="http://o/", origin_framing="close"))
    assert c.certainty == "certain" and "answers close-delimited too" in c.hop
    # no proxy in sight: the app's own server closes, not an upstream's framing
    assert diagnose(STREAMS + [dict(selfdel)], evidence=Evidence(headers=[["Server", "x"]], framing="close")) == []
    # a held close-delimited body behind a proxy says so in its evidence
    [c] = diagnose([dict(r) for r in HELD], evidence=Evidence(headers=[["Via", "1.1 varnish"]], framing="close"))
    assert "HTTP/1.0-style upstream" in c.evidence


# --- release sizes ------------------------------------------------------------------------------------

def test_releases_of_a_buffer_size_name_the_buffer():
    results = [dict(r) for r in HELD]
    [c] = diagnose(results, evidence=Evidence(headers=[["Server", "x"]], release_sizes=[4096, 4096, 4096, 700]))
    assert c.kind == "buffer" and "released in 4096-byte pieces" in c.evidence
    assert c.hop.startswith("likely a 4 KiB buffer flushed only when full") and "the body was released in 4096" in c.hop
    [c] = diagnose([dict(r) for r in HELD], evidence=Evidence(headers=[["Server", "Apache/2.4"]],
                                                              release_sizes=[8192, 8192, 100]))
    assert c.hop.startswith("likely Apache httpd (mod_proxy_fcgi reads and passes on 8 KiB")
    # sizes that match no buffer: the ordinary hold
    [c] = diagnose([dict(r) for r in HELD], evidence=Evidence(release_sizes=[700]))
    assert c.kind == "held"


def test_culprit_for_prefers_the_most_evidence():
    via = [["Via", "1.1 varnish"]]
    assert "do_stream = false" in culprit_for("held", via, signs={"whole-body"})["hop"]
    assert "do_gzip = true" in culprit_for("held", via, signs={"compressed"})["hop"]
    assert culprit_for("held", via)["hop"].startswith("Varnish (do_stream off, do_gzip on")
    assert culprit_for("buffer", [], size=1234) is None
