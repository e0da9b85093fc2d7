"""Remote targets over TLS: verification on by default (the system store, or ``SSL_CERT_FILE``),
SNI, ``--insecure``, and one-line errors for DNS, refused connections, TLS failures and timeouts.

The server is the countdown's ASGI port under hypercorn with a certificate signed by a CA these
tests make (``cryptography``); the suite runs as users run it, ``python -m conformance URL``.
"""
import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conformance.wire.recorder import record
from conformance.targets import launcher

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCALE, COUNT = 0.1, 4
VERIFY_FAILED = "TLS certificate verification failed"


def _name(cn: str):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate for localhost and 127.0.0.1 signed by it, as PEM files; and
    one for another name only ("other"), signed by the same CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("conformance test CA")).issuer_name(_name("conformance test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    def leaf(names):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(str(names[0].value))).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem",
             "other-cert": folder / "other-cert.pem", "other-key": folder / "other-key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert, key = leaf([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    files["cert"].write_bytes(cert)
    files["key"].write_bytes(key)
    cert, key = leaf([x509.DNSName("other.example")])
    files["other-cert"].write_bytes(cert)
    files["other-key"].write_bytes(key)
    return files


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki):
    pytest.importorskip("hypercorn")
    server = launcher.start("tls-hypercorn", ["{python}", "-m", "hypercorn", "--bind", "{address}",
                                              "--certfile", str(pki["cert"]), "--keyfile", str(pki["key"]),
                                              "conformance.targets.asgi_app:app"], SCALE)
    try:
        yield server
    finally:
        server.stop()


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env.update(extra)
    return env


# Checks read from the suite's own wire recordings (a browser check, where there is one, has a
# certificate store of its own): all of them for the verified run, a few for the others.
WIRE_CHECKS = ["--check", "framing.", "--check", "delivery."]
FEW_CHECKS = ["--check", "framing.complete", "--check", "framing.head-no-body", "--check", "delivery.progressive",
              "--check", "delivery.first-byte"]


def cli(url, *args, report_dir, env, checks=FEW_CHECKS):
    p = subprocess.run([sys.executable, "-m", "conformance", url, "--interval", str(SCALE), *checks, *args,
                        "--report-dir", str(report_dir)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    doc = json.loads((Path(report_dir) / "results.json").read_text())
    return p, doc


def verdicts(doc) -> set[str]:
    return {r["verdict"] for r in doc["results"]}


def test_verified_against_the_ca_in_ssl_cert_file(tls_server, pki, tmp_path):
    url = f"https://127.0.0.1:{tls_server.port}/{COUNT}"
    p, doc = cli(url, report_dir=tmp_path, env=clean_env(SSL_CERT_FILE=str(pki["ca"])), checks=WIRE_CHECKS)
    assert p.returncode == 0, p.stdout[-3000:]
    # SHOULD-level timing findings (warn) do not fail a run; on a busy machine they may appear
    assert verdicts(doc) <= {"pass", "info", "skip", "warn"} and "pass" in verdicts(doc)
    get = next(r for r in doc["results"] if r["check"] == "framing.complete")
    rec = json.loads((tmp_path / get["recording"]).read_text())
    assert rec["tls"]["version"].startswith("TLS") and rec["tls"]["alpn"] == "http/1.1"


def test_an_unknown_ca_is_an_error_with_exit_code_6(tls_server, tmp_path):
    url = f"https://127.0.0.1:{tls_server.port}/{COUNT}"
    p, doc = cli(url, report_dir=tmp_path, env=clean_env())
    assert p.returncode == 6, p.stdout[-3000:]
    assert verdicts(doc) <= {"error", "skip"} and "error" in verdicts(doc)
    errors = [r["observed"] for r in doc["results"] if r["verdict"] == "error"]
    assert all(VERIFY_FAILED in e and "\n" not in e for e in errors), errors
    assert VERIFY_FAILED in p.stdout and "--insecure" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr


def test_insecure_skips_verification(tls_server, tmp_path):
    url = f"https://127.0.0.1:{tls_server.port}/{COUNT}"
    p, doc = cli(url, "--insecure", report_dir=tmp_path, env=clean_env())
    assert p.returncode == 0, p.stdout[-3000:]
    assert verdicts(doc) <= {"pass", "info", "skip", "warn"} and "pass" in verdicts(doc)


def test_a_targets_file_can_mark_one_target_insecure(tls_server, tmp_path):
    f = tmp_path / "targets.toml"
    f.write_text(f'[[target]]\nid = "tls-local"\nurl = "https://127.0.0.1:{tls_server.port}/{COUNT}"\n'
                 f'interval = {SCALE}\ninsecure = true\n')
    p = subprocess.run([sys.executable, "-m", "conformance", "--targets-file", str(f), *FEW_CHECKS,
                        "--report-dir", str(tmp_path / "r")], cwd=ROOT, env=clean_env(), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:]


class SNIServer:
    """A TLS server that notes the server name each client sends (SNI) and answers 200."""

    def __init__(self, pki, which="cert"):
        self.names: list[str | None] = []
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki[which], pki[which.replace("cert", "key")])
        ctx.sni_callback = lambda sslobj, name, c: self.names.append(name)
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = tls.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                                b"Connection: close\r\n\r\nok")
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self):
        self.sock.close()


def test_sni_carries_the_host_name(pki, monkeypatch):
    server = SNIServer(pki)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))
        rec = record(f"https://localhost:{server.port}/", timeout=5)
        assert rec.error is None and rec.status == 200 and rec.body == b"ok"
        assert server.names == ["localhost"]
        # An IP address is not a server name: no SNI (RFC 6066 §3), and the IP SAN is verified.
        rec = record(f"https://127.0.0.1:{server.port}/", timeout=5)
        assert rec.error is None and rec.status == 200
        assert server.names == ["localhost", None]
    finally:
        server.close()


def test_a_certificate_for_another_name_fails_verification(pki, monkeypatch):
    server = SNIServer(pki, "other-cert")
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))
        rec = record(f"https://localhost:{server.port}/", timeout=5)
    finally:
        server.close()
    assert _one_line(rec.error).startswith(f"{VERIFY_FAILED} for localhost")
    assert "mismatch" in rec.error


def _one_line(error: str | None) -> str:
    assert error and "\n" not in error and "Traceback" not in error, error
    return error


def test_dns_failure_is_one_line():
    rec = record("https://no-such-host.invalid/3", timeout=5)
    assert _one_line(rec.error).startswith("DNS lookup failed for no-such-host.invalid")


def test_refused_connection_is_one_line():
    port = launcher.free_port()
    rec = record(f"https://127.0.0.1:{port}/3", timeout=5)
    assert _one_line(rec.error) == f"connection refused by 127.0.0.1:{port}"


def test_plain_http_on_an_https_url_is_a_tls_failure():
    server = launcher.start("control-stream", ["{python}", "-m", "conformance.targets.controls", "stream", "{address}"], SCALE)
    try:
        rec = record(f"https://127.0.0.1:{server.port}/3", timeout=5)
    finally:
        server.stop()
    assert _one_line(rec.error).startswith(f"TLS handshake with 127.0.0.1:{server.port} failed")


def test_a_silent_server_times_out_in_the_handshake():
    with socket.create_server(("127.0.0.1", 0)) as listener:   # accepts (backlog), never answers
        port = listener.getsockname()[1]
        rec = record(f"https://127.0.0.1:{port}/3", timeout=0.5)
    error = _one_line(rec.error)
    assert error.startswith(f"TLS handshake with 127.0.0.1:{port} failed") and "timed out" in error


def test_verification_failure_names_the_cause(tls_server, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    rec = record(f"https://127.0.0.1:{tls_server.port}/{COUNT}", timeout=5)
    assert _one_line(rec.error).startswith(f"{VERIFY_FAILED} for 127.0.0.1")
    assert "--insecure" in rec.error
