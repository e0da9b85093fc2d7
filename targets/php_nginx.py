"""A real stack nobody here wrote: Debian's PHP-FPM behind Debian's nginx over FastCGI, with the
distribution's defaults (Debian's php.ini: output_buffering = 4096, expose_php = Off; nginx's
``fastcgi_buffering`` on, ``gzip on`` for text/html only), serving an SSE script written as PHP
tutorials write it: ten events 0.3 s apart (× the time scale), each followed by ``ob_flush();
flush();``.

- ``php-fpm-nginx``: the defaults. Measured (raw socket, loopback): the head and all ten events
  arrive together at about 3.0 s: nginx's FastCGI buffering holds the whole response, head included
  (PHP flushed each event: with ``fastcgi_buffering off`` the same script streams).
- ``php-fpm-nginx-unbuffered``: the same with ``fastcgi_buffering off;`` in the PHP location: each
  event arrives 0.3 s after the last, the head at once.

Run as ``python -m targets.php_nginx VARIANT HOST:PORT``: PHP-FPM (``php-fpmX.Y`` from
``/usr/sbin``) listens on a free loopback port, nginx on HOST:PORT, both in the foreground in a
temporary directory of their own; when either ends, or on SIGTERM/SIGINT, both are stopped and the
directory removed. Registered as built-in targets of the same names (``builtins()``); where nginx or
PHP-FPM is not installed they are skipped with the install hint.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .nginx import SBIN, _free_port, _stop, _terminate, _wait_listening, first_exit
from .timescale import factor

VARIANTS = {"php-fpm-nginx": "Debian's defaults (fastcgi_buffering on); holds the whole response",
            "php-fpm-nginx-unbuffered": "fastcgi_buffering off in the PHP location; streams"}
PHP_INI = "/etc/php/{version}/fpm/php.ini"
INSTALL_HINT = "Debian/Ubuntu: apt-get install nginx php-fpm"
EVENTS, GAP = 10, 0.3
SCRIPT = """<?php
header('Content-Type: text/event-stream');
header('Cache-Control: no-cache');
for ($i = 1; $i <= %(events)d; $i++) {
    echo "id: $i\\ndata: {\\"n\\": $i, \\"of\\": %(events)d}\\n\\n";
    @ob_flush();
    flush();
    if ($i < %(events)d) { usleep(%(gap_us)d); }
}
"""


def find_fpm() -> str | None:
    """Debian's PHP-FPM binary (``php-fpm8.2`` on bookworm), the newest installed."""
    found = sorted(glob.glob("/usr/sbin/php-fpm*")) or [shutil.which("php-fpm") or ""]
    return found[-1] or None


def nginx_conf(variant: str, listen: str, fpm_port: int, tmp: Path) -> str:
    unbuffered = "            fastcgi_buffering off;\n" if variant.endswith("unbuffered") else ""
    temp = "\n".join(f"    {k}_temp_path {tmp}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
daemon off;
events {{ worker_connections 256; }}
http {{
    sendfile on;
    tcp_nopush on;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    gzip on;
{temp}
    server {{
        listen {listen};
        root {tmp}/www;
        index index.php;
        location ~ \\.php$ {{
            # Debian's snippets/fastcgi-php.conf, as its default site includes it
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            try_files $fastcgi_script_name =404;
            set $path_info $fastcgi_path_info;
            fastcgi_param PATH_INFO $path_info;
            fastcgi_index index.php;
            include /etc/nginx/fastcgi.conf;
            fastcgi_pass 127.0.0.1:{fpm_port};
{unbuffered}        }}
    }}
}}
"""


def fpm_conf(tmp: Path, port: int) -> str:
    user = "user = www-data\ngroup = www-data\n" if os.geteuid() == 0 else ""
    return (f"[global]\npid = {tmp}/fpm.pid\nerror_log = {tmp}/fpm.log\ndaemonize = no\n"
            f"[www]\n{user}listen = 127.0.0.1:{port}\npm = static\npm.max_children = 8\nclear_env = no\n")


def main(variant: str, address: str) -> int:
    from .launcher import _die_with_parent
    nginx, fpm = shutil.which("nginx") or shutil.which("nginx", path=SBIN), find_fpm()
    if not nginx or not fpm:
        print(f"nginx or php-fpm is not installed ({INSTALL_HINT})", file=sys.stderr)
        return 3
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"conformance-{variant}-"))
    try:
        tmp.chmod(0o755)   # PHP-FPM's workers (www-data) read the script
        (tmp / "www").mkdir(mode=0o755)
        scale = factor()
        (tmp / "www" / "sse.php").write_text(SCRIPT % {"events": EVENTS, "gap_us": int(GAP * scale * 1e6)})
        (tmp / "www" / "sse.php").chmod(0o644)
        port = _free_port(avoid=int(address.rsplit(":", 1)[1]))
        (tmp / "fpm.conf").write_text(fpm_conf(tmp, port))
        version = Path(fpm).name.removeprefix("php-fpm") or "8.2"
        ini = PHP_INI.format(version=version)
        argv = [fpm, "--nodaemonize", "-y", str(tmp / "fpm.conf")] + (["-c", ini] if Path(ini).exists() else [])
        argv += ["-R"] if os.geteuid() == 0 else []
        php = subprocess.Popen(argv, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        procs.append(php)
        if not _wait_listening(port, php):
            print(f"php-fpm did not start on port {port}", file=sys.stderr)
            return 1
        (tmp / "nginx.conf").write_text(nginx_conf(variant, address, port, tmp))
        front = subprocess.Popen([nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)], stdin=subprocess.DEVNULL,
                                 preexec_fn=_die_with_parent)
        procs.append(front)
        return first_exit(procs, front, ("nginx", "php-fpm"), tmp)
    finally:
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def builtins() -> list:
    from .registry import Builtin   # here: the registry imports this module while it loads
    fpm = find_fpm()
    return [Builtin(name, ("{python}", "-m", f"{__package__}.php_nginx", name, "{address}"),
                    f"Debian's PHP-FPM behind Debian's nginx (FastCGI), an SSE script with ob_flush(); flush(): {what}",
                    path="/sse.php", profile=None, interval=None,
                    requires=("program:nginx", f"program:{Path(fpm).name if fpm else 'php-fpm'}"),
                    install_hint=INSTALL_HINT)
            for name, what in VARIANTS.items()]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python -m targets.php_nginx {{{','.join(VARIANTS)}}} HOST:PORT")
    sys.exit(main(sys.argv[1], sys.argv[2]))
