"""Built-in HTTPS targets behind Caddy that offer HTTP/3: the probe streaming over QUIC, held, and not offered.

``python -m targets.h3_targets VARIANT HOST:PORT ORIGIN_PORT`` starts the probe
(``conformance.probe``, on cheroot) on 127.0.0.1:ORIGIN_PORT, writes a self-signed certificate
(``targets.tlscert``) and a Caddyfile into a temporary directory of its own, and runs Caddy in
the foreground on HOST:PORT over TLS: TCP for HTTP/1.1 and HTTP/2, and the same port on UDP for
HTTP/3, announced in every TCP response as ``Alt-Svc: h3=":PORT"; ma=2592000`` (Caddy's default,
2.6 and later). When either child ends, or on SIGTERM or SIGINT, both are stopped and the
directory removed (as ``targets.chains`` does).

Variants (``VARIANTS``), as measured with Caddy 2.6.2 (Debian 12) and the suite's HTTP/3
recorder (``delivery.h3``; ``tests/test_h3.py`` asserts each):

- ``stream``: ``reverse_proxy`` with Caddy's defaults. Over HTTP/3 each SSE event arrives in its
  own DATA frame when the probe writes it: ``delivery.h3`` passes.
- ``buffered``: ``reverse_proxy { buffer_responses }``. Caddy reads the whole upstream body before
  it answers, over every protocol: over HTTP/3 the head and all events arrive together at the
  end, in one DATA frame: ``delivery.h3`` fails. (``flush_interval -1``, the other setting
  users reach for, is the streaming one; Caddy already flushes ``text/event-stream`` at once.)
- ``no-h3``: the server's ``protocols h1 h2``: HTTPS with HTTP/2, no UDP listener and no
  ``Alt-Svc``: ``delivery.h3`` is ``skip`` with that reason.

Every site binds the target's own address (``bind``): the HTTP/3 listener then listens on that
address only, not on every interface; and Caddy 2.6 picks the certificate of a QUIC handshake
that carries no server name (a client connecting to an IP address sends none, RFC 6066 §3) by the
listener's local address, which for a wildcard listener matches no certificate: the handshake
fails with TLS internal_error (QUIC error 0x150), measured with Caddy 2.6.2 and aioquic 1.7.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .nginx import _stop, _terminate, _wait_listening, first_exit
from .tlscert import write_self_signed

VARIANTS = {
    "stream": ("reverse_proxy with Caddy's defaults, HTTP/3 on; streams over every protocol", ""),
    "buffered": ("reverse_proxy { buffer_responses }, HTTP/3 on; holds the whole body, over HTTP/3 too",
                 " {\n        buffer_responses\n    }"),
    "no-h3": ("protocols h1 h2: HTTPS without HTTP/3 (no Alt-Svc); streams", ""),
}
INSTALL_HINT = "Debian/Ubuntu: apt-get install caddy (Debian 12 and later)"


def caddyfile(variant: str, listen: str, origin: int, tmp: Path, cert: Path, key: Path) -> str:
    host, _, port = listen.rpartition(":")
    protocols = "h1 h2" if variant == "no-h3" else "h1 h2 h3"
    return f"""\
# written by targets/h3_targets.py for the conformance suite (caddy, {variant})
{{
    admin off
    auto_https disable_redirects
    skip_install_trust
    servers {listen} {{
        protocols {protocols}
    }}
}}
https://{listen} {{
    bind {host}
    tls {cert} {key}
    reverse_proxy 127.0.0.1:{origin}{VARIANTS[variant][1]}
}}
"""


def main(variant: str, address: str, origin_port: int) -> int:
    from .launcher import _die_with_parent
    exe = shutil.which("caddy")
    if exe is None:
        print(f"caddy is not installed ({INSTALL_HINT})", file=sys.stderr)
        return 3
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"conformance-h3-{variant}-"))
    try:
        origin = subprocess.Popen([sys.executable, "-m", "conformance.probe", "--port", str(origin_port)],
                                  stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        procs.append(origin)
        if not _wait_listening(origin_port, origin):
            print(f"the probe did not start on port {origin_port}", file=sys.stderr)
            return 1
        cert, key = write_self_signed(tmp)
        conf = tmp / "Caddyfile"
        conf.write_text(caddyfile(variant, address, origin_port, tmp, cert, key))
        env = dict(os.environ, HOME=str(tmp), XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"))
        proxy = subprocess.Popen([exe, "run", "--config", str(conf), "--adapter", "caddyfile"],
                                 stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent)
        procs.append(proxy)
        return first_exit(procs, proxy, ("caddy", "the probe"), tmp)
    finally:
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


COUNT = 5   # events per stream; the interval is the probe's, 1 s × the time scale


def builtins() -> list:
    from .registry import Builtin   # here: the registry imports this module while it loads
    names = {"stream": "caddy-h3", "buffered": "control-h3-buffered", "no-h3": "control-https-no-h3"}
    return [Builtin(names[v], ("{python}", "-m", f"{__package__}.h3_targets", v, "{address}", "{origin_port}"),
                    f"the probe (SSE) behind Caddy over HTTPS: {what}",
                    path="/sse/{count}?interval={interval}", profile="sse", interval=1.0, scheme="https",
                    insecure=True, requires=("program:caddy", "module:cryptography"), install_hint=INSTALL_HINT)
            for v, (what, _inner) in VARIANTS.items()]


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in VARIANTS or not sys.argv[3].isdigit():
        sys.exit(f"usage: python -m targets.h3_targets {{{','.join(VARIANTS)}}} HOST:PORT ORIGIN_PORT")
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
