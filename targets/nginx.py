"""Debian's nginx as a reverse proxy in front of the corrected web.py app, as one target.

``python -m targets.nginx VARIANT HOST:PORT`` starts the upstream (``targets/webpy_app.py`` on
web.py's own server, cheroot, on another free loopback port; or the command after ``--``, with
``{upstream_address}``, ``{upstream_host}`` and ``{upstream_port}`` in it: a user's app under its
server, ``conformance/engine/apps.py``), waits until it listens, writes a
complete ``nginx.conf`` into a temporary directory of its own (pid file, error log and every temp
path inside it, ``daemon off;``, ``master_process off;`` so nginx is a single process), and runs
nginx in the foreground on HOST:PORT. It then waits: when either child ends, or on SIGTERM or
SIGINT, both are stopped and the directory removed. Both children are in this process's group
(the launcher stops the whole group) and get SIGTERM if this process dies (PR_SET_PDEATHSIG).

The variants (``VARIANTS``) differ from the default in a setting or two: the default is nginx's
own defaults for ``proxy_pass`` (``proxy_buffering on``, ``proxy_http_version 1.0``) with the
http-level settings of Debian's stock ``/etc/nginx/nginx.conf`` except its ``gzip on``, which is
the ``gzip`` variant's one difference. What each really does is in ``docs/matrix.md``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "default": ("nginx's proxy defaults (proxy_buffering on, HTTP/1.0 to the upstream)", ""),
    "unbuffered": ("proxy_buffering off", "proxy_buffering off;"),
    "gzip": ("gzip on, as Debian's stock nginx.conf has it", "gzip on;"),
    # Two more, to tell the causes apart: the default's buffering with a chunked upstream, and
    # gzip without proxy buffering.
    "http11": ("proxy_http_version 1.1 (the upstream answers chunked), buffering on", "proxy_http_version 1.1;"),
    "unbuffered-gzip": ("proxy_buffering off and gzip on", "proxy_buffering off;\n    gzip on;"),
}
SBIN = "/usr/sbin:/sbin:/usr/local/sbin"
INSTALL_HINT = "Debian/Ubuntu: apt-get install nginx"
ROOT = Path(__file__).resolve().parent.parent


def find_nginx() -> str | None:
    """The nginx binary: on PATH, or in the sbin folders (not on a non-root user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path=SBIN)


def config(listen: str, upstream_port: int, tmp: Path, variant: str, extra: str | None = None) -> str:
    """nginx.conf for VARIANT; ``extra`` (http-level directives) in place of the variant's own."""
    mime = "/etc/nginx/mime.types"
    extra = VARIANTS[variant][1] if extra is None else extra
    return f"""\
# written by targets/nginx.py for the conformance suite (variant: {variant})
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;

events {{
    worker_connections 256;
}}

http {{
    # Debian's stock http settings (/etc/nginx/nginx.conf), but for gzip (see the variants).
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    {f"include {mime};" if os.path.exists(mime) else ""}
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    {extra}

    server {{
        listen {listen};
        server_name localhost;
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
    }}
}}
"""


def _free_port(avoid: int) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != avoid:
            return port


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)  # polling for the listener; nothing to wait on instead
    return False


def first_exit(procs: list, proxy, names: tuple[str, str], tmp: Path) -> int:
    """Wait until the proxy or its upstream ends (or a signal ends us), say which on stderr with
    the tail of the proxy's error log, and return 1: a front without its upstream is down."""
    pid, status = os.wait()
    which = names[0] if pid == proxy.pid else names[1]
    for p in procs:
        if p.pid == pid:
            p.returncode = os.waitstatus_to_exitcode(status)
    log = tmp / "error.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    print(f"{which} exited with status {os.waitstatus_to_exitcode(status)}\n{tail}", file=sys.stderr)
    return 1


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _terminate(signum, frame):
    raise SystemExit(0)


def main(variant: str, address: str, upstream_argv: list[str] | None = None) -> int:
    from .launcher import _die_with_parent
    nginx = find_nginx()
    if nginx is None:
        print(f"nginx is not installed ({INSTALL_HINT})", file=sys.stderr)
        return 3
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    host, _, port = address.rpartition(":")
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"conformance-nginx-{variant}-"))
    try:
        upstream_port = _free_port(avoid=int(port))
        what = "the upstream web.py app"
        cmd = [sys.executable, str(ROOT / "targets" / "webpy_app.py"), f"127.0.0.1:{upstream_port}"]
        if upstream_argv:
            what = f"the upstream {' '.join(upstream_argv)}"
            cmd = [a.replace("{upstream_address}", f"127.0.0.1:{upstream_port}").replace("{upstream_host}", "127.0.0.1")
                   .replace("{upstream_port}", str(upstream_port)) for a in upstream_argv]
        upstream = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        procs.append(upstream)
        if not _wait_listening(upstream_port, upstream):
            print(f"{what} did not start on port {upstream_port}", file=sys.stderr)
            return 1
        conf = tmp / "nginx.conf"
        conf.write_text(config(address, upstream_port, tmp, variant))
        proxy = subprocess.Popen([nginx, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)],
                                 stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        procs.append(proxy)
        return first_exit(procs, proxy, ("nginx", what), tmp)
    finally:
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    args, _, upstream_cmd = sys.argv[1:], None, None
    if "--" in args:
        args, upstream_cmd = args[:args.index("--")], args[args.index("--") + 1:]
    if len(args) != 2 or args[0] not in VARIANTS or upstream_cmd == []:
        sys.exit(f"usage: python -m targets.nginx {{{','.join(VARIANTS)}}} HOST:PORT [-- UPSTREAM COMMAND]")
    sys.exit(main(args[0], args[1], upstream_cmd))
