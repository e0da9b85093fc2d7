"""The built-in chains (targets/chains.py): the probe behind nginx, Apache, HAProxy, Varnish and
Caddy, each holding configuration diagnosed with its hop and fix, each fix passing.

All chains run side by side in one ``Run``, as ``--target all`` runs them (each with its origin
as ``--reference``), at a 300 ms interval with five events: about 20 s on two cores. Only the
checks the diagnosis reads are judged (the rest have tests of their own). A proxy that is not
installed makes its chains ``skip`` (tested with a fake).
"""
import shutil

import pytest

from conformance.checks.catalogue import CHECKS, load_all
from conformance.engine.run import Options, Run
from conformance.analysis.target import Target
from conformance.targets.chains import CHAINS, INSTALL_HINTS
from conformance.targets.registry import BUILTINS

load_all()
TIME_SCALE, COUNT = 0.3, 5
JUDGED = ("delivery.chain", "delivery.first-byte", "delivery.progressive", "delivery.compressed")

# name -> the causes the diagnosis must find, in order: (kinds allowed, the hop begins with, the fix
# says); [] for a configuration that streams (every judged check passes, no cause).
EXPECTED = {
    "chain-nginx": [("held", "nginx (proxy_buffering", "proxy_buffering off")],
    "chain-nginx-unbuffered": [],
    "chain-nginx-gzip": [("compression", "nginx (gzip module)", "gzip off")],
    "chain-nginx-gzip-unbuffered": [],
    "chain-apache-fcgi": [("held", "Apache httpd (mod_proxy_fcgi", "flushpackets=on")],
    "chain-apache-fcgi-flushpackets": [],
    "chain-apache-deflate": [],
    "chain-haproxy": [("delay", "HAProxy without option http-no-delay", "option http-no-delay")],
    "chain-haproxy-nodelay": [],
    "chain-haproxy-gzip": [("delay", "HAProxy without option http-no-delay", "option http-no-delay"),
                           ("compression event-tail", "HAProxy (compression", "compression type")],
    "chain-haproxy-gzip-nodelay": [("compression event-tail", "HAProxy (compression", "compression type")],
    "chain-haproxy-gzip-fixed": [],
    "chain-varnish-nostream": [("held", "Varnish (beresp.do_stream = false", "do_stream = true")],
    "chain-varnish-gzip": [("held", "Varnish (beresp.do_gzip = true", "do_gzip = false")],
    "chain-varnish": [],
    "chain-caddy-buffered": [("held", "Caddy (reverse_proxy buffer_responses", "drop buffer_responses")],
    "chain-caddy": [],
    "chain-caddy-encode": [("compression", "Caddy (encode", "leave text/event-stream out of encode")],
    "chain-caddy-encode-html": [],
}
INSTALLED = [n for n in EXPECTED if BUILTINS[n].missing() is None]


def test_every_chain_has_its_expectation_and_every_holding_one_its_fix():
    assert set(EXPECTED) == {f"chain-{n}" for n in CHAINS}
    for name, chain in CHAINS.items():
        assert bool(EXPECTED[f"chain-{name}"]) == bool(chain.holds), name
        for held in chain.fix_of:
            assert CHAINS[held].holds and not EXPECTED[f"chain-{name}"], name
    fixed = {f for c in CHAINS.values() for f in c.fix_of}
    assert fixed == {n for n, c in CHAINS.items() if c.holds}, "a holding chain without its fix"


def test_a_chain_whose_proxy_is_not_installed_is_skipped_with_its_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    b = BUILTINS["chain-varnish"]
    assert b.missing() == f"varnishd not installed ({INSTALL_HINTS['varnish']})"
    run = Run([Target("chain-varnish", None, "sse", 0.3, COUNT, builtin="chain-varnish")],
              Options(time_scale=TIME_SCALE, report_dir=tmp_path))
    try:
        finding = run.targets[0].run_check(CHECKS["delivery.chain"])
    finally:
        run.stop()
    assert finding.verdict == "skip" and "apt-get install varnish" in finding.observed


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    targets = [Target(n, None, BUILTINS[n].profile, BUILTINS[n].interval * TIME_SCALE, COUNT, builtin=n)
               for n in INSTALLED]
    run = Run(targets, Options(time_scale=TIME_SCALE, timeout=5.0, report_dir=tmp_path_factory.mktemp("chains")))
    for t in run.targets:
        t.scenarios = list({CHECKS[c].scenario for c in JUDGED})
    try:
        run.ensure_started()
        verdicts = {(t.id, c): t.run_check(CHECKS[c]) for t in run.targets for c in JUDGED}
        yield verdicts, {t.id: [c.to_dict() for c in run.diagnosis(t)] for t in run.targets}, run
    finally:
        run.stop()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_chain_is_diagnosed(judged, name):
    if name not in INSTALLED:
        pytest.skip(BUILTINS[name].missing())
    verdicts, diagnoses, run = judged
    got = {c: verdicts[(name, c)] for c in JUDGED}
    causes = diagnoses[name]
    tr = run.by_id(name)
    assert tr.target.reference and tr.target.reference != tr.target.url
    if not EXPECTED[name]:
        bad = {c: f"{f.verdict}: {f.observed}" for c, f in got.items() if f.verdict != "pass"}
        assert not bad and not causes, (bad, causes)
        return
    assert got["delivery.chain"].verdict == "fail", got["delivery.chain"].observed
    assert len(causes) == len(EXPECTED[name]), (causes, {c: (f.observed, f.metrics) for c, f in got.items()})
    for cause, (kinds, hop, fix) in zip(causes, EXPECTED[name]):
        assert cause["kind"] in kinds.split(), cause
        assert cause["certainty"] == "certain" and "certain:" in cause["hop"] and "likely" not in cause["hop"], cause
        assert cause["hop"].startswith(hop), cause["hop"]
        assert fix in cause["fix"], cause["fix"]
        assert cause["source"].startswith("https://"), cause
    assert any("delivery.chain" in c["explains"] for c in causes), causes
