"""Debian's nginx in front of a server that already runs (the probe, say), for ``delivery.chain``.

``python -m targets.probe_nginx VARIANT UPSTREAM_PORT HOST:PORT`` runs nginx on HOST:PORT with
``targets/nginx.py``'s configuration for VARIANT (``default``: nginx's proxy defaults;
``unbuffered``, ``gzip``, ``http11``, ``unbuffered-gzip``), proxying to 127.0.0.1:UPSTREAM_PORT,
until it is stopped (SIGTERM, SIGINT) or nginx ends. Unlike ``targets.nginx`` it starts no
upstream of its own: the origin is started apart, so the suite can record it directly too (the
``--reference``).
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .nginx import INSTALL_HINT, VARIANTS, _stop, _terminate, config, find_nginx


def main(variant: str, upstream_port: int, address: str) -> int:
    from .launcher import _die_with_parent
    nginx = find_nginx()
    if nginx is None:
        print(f"nginx is not installed ({INSTALL_HINT})", file=sys.stderr)
        return 3
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix=f"conformance-probe-nginx-{variant}-"))
    proc = None
    try:
        conf = tmp / "nginx.conf"
        conf.write_text(config(address, upstream_port, tmp, variant))
        proc = subprocess.Popen([nginx, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)],
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        status = proc.wait()
        log = tmp / "error.log"
        print(f"nginx exited with status {status}\n" + (log.read_text(errors="replace")[-2000:] if log.exists() else ""),
              file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            _stop([proc])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in VARIANTS or not sys.argv[2].isdigit():
        sys.exit(f"usage: python -m targets.probe_nginx {{{','.join(VARIANTS)}}} UPSTREAM_PORT HOST:PORT")
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
