"""Built-in chains: the probe behind a real proxy, each with its known holding configuration and its fix.

``python -m targets.chains NAME HOST:PORT ORIGIN_PORT`` starts the probe (``conformance.probe``,
standalone on cheroot) on 127.0.0.1:ORIGIN_PORT, waits until it listens, writes the proxy's
configuration for NAME into a temporary directory of its own (pid file, logs, runtime files all
inside it), and runs the proxy in the foreground on HOST:PORT, forwarding to the probe. When
either child ends, or on SIGTERM or SIGINT, both are stopped and the directory removed; both are
in this process's group (``targets/launcher.py`` stops the whole group) and get SIGTERM if this
process dies (PR_SET_PDEATHSIG).

The suite records the chain (HOST:PORT) and, as its ``--reference``, the probe itself
(ORIGIN_PORT): ``delivery.chain`` then knows the hop for certain, and the diagnosis says which
setting holds and how to fix it. Every chain is registered as a built-in target ``chain-NAME``
(``builtins()``); a proxy that is not installed makes its targets ``skip`` with the install hint.

The configurations are the proxies' own defaults but for what a loopback run needs (addresses,
temp paths, one process where the proxy allows it) and the one or two settings each chain is
about (``CHAINS``: what it holds, or what fixes it). What each did when measured is in the
README ("Finding the hop that buffers") and asserted by ``tests/test_chains.py``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .nginx import SBIN, _free_port, _stop, _terminate, _wait_listening, first_exit
from .nginx import config as nginx_config


@dataclass(frozen=True)
class Chain:
    proxy: str             # nginx, apache, haproxy, varnish, caddy
    variant: str           # the proxy's own name for the configuration
    what: str              # the setting(s), in the proxy's words
    holds: str | None      # None: the fixed configuration; else what it holds ("identity", "compressed")
    fix_of: tuple[str, ...] = ()   # for a fixed configuration: the chains it fixes
    origin: str = "probe"  # the probe on cheroot; "fcgi": over FastCGI too (and HTTP, for the reference)


PROGRAMS = {"nginx": "nginx", "apache": "apache2", "haproxy": "haproxy", "varnish": "varnishd", "caddy": "caddy"}
INSTALL_HINTS = {"nginx": "Debian/Ubuntu: apt-get install nginx", "apache": "Debian/Ubuntu: apt-get install apache2",
                 "haproxy": "Debian/Ubuntu: apt-get install haproxy", "varnish": "Debian/Ubuntu: apt-get install varnish",
                 "caddy": "Debian/Ubuntu: apt-get install caddy (Debian 12 and later)"}

CHAINS: dict[str, Chain] = {}


def _add(name: str, *args, **kw) -> None:
    CHAINS[name] = Chain(*args, **kw)


def find(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path=SBIN)


# name -> Chain. Every holding configuration comes with the configuration that fixes it (the
# README's table of chains, with the delay each added when measured).
_add("nginx", "nginx", "default", "nginx's proxy defaults: proxy_buffering on, HTTP/1.0 to the upstream", "identity")
_add("nginx-unbuffered", "nginx", "unbuffered", "proxy_buffering off", None, fix_of=("nginx",))
_add("nginx-gzip", "nginx", "gzip", "proxy_http_version 1.1 (streams) with gzip on for text/event-stream", "compressed")
_add("nginx-gzip-unbuffered", "nginx", "gzip-unbuffered", "gzip on for text/event-stream, proxy_buffering off", None,
     fix_of=("nginx-gzip",))
_add("apache-fcgi", "apache", "fcgi", "mod_proxy_fcgi's defaults (flushpackets off), the app as php-fpm serves one",
     "identity", origin="fcgi")
_add("apache-fcgi-flushpackets", "apache", "fcgi-flushpackets", "mod_proxy_fcgi with flushpackets=on, and mod_deflate",
     None, fix_of=("apache-fcgi",), origin="fcgi")
_add("apache-deflate", "apache", "deflate", "mod_proxy_http and mod_deflate (DEFLATE for text/event-stream)", None)
_add("haproxy", "haproxy", "default", "HAProxy's defaults (mode http, no option http-no-delay)", "identity")
_add("haproxy-nodelay", "haproxy", "nodelay", "option http-no-delay", None, fix_of=("haproxy",))
_add("haproxy-gzip", "haproxy", "gzip", "compression algo gzip for text/event-stream, no option http-no-delay", "identity")
_add("haproxy-gzip-nodelay", "haproxy", "gzip-nodelay", "compression algo gzip for text/event-stream and option http-no-delay",
     "compressed")
_add("haproxy-gzip-fixed", "haproxy", "gzip-fixed", "option http-no-delay, compression type without text/event-stream",
     None, fix_of=("haproxy-gzip", "haproxy-gzip-nodelay"))
_add("varnish-nostream", "varnish", "nostream", "set beresp.do_stream = false", "identity")
_add("varnish-gzip", "varnish", "gzip", "set beresp.do_gzip = true", "identity")
_add("varnish", "varnish", "default", "return (pass), beresp.do_stream as by default (true), no do_gzip", None,
     fix_of=("varnish-nostream", "varnish-gzip"))
_add("caddy-buffered", "caddy", "buffered", "reverse_proxy { buffer_responses }", "identity")
_add("caddy", "caddy", "default", "reverse_proxy with Caddy's defaults (flushes a chunked response at once)", None,
     fix_of=("caddy-buffered",))
_add("caddy-encode", "caddy", "encode", "encode gzip (minimum_length 64, so the probe's events qualify)", "compressed")
_add("caddy-encode-html", "caddy", "encode-html", "encode gzip only for text/html (match header Content-Type)", None,
     fix_of=("caddy-encode",))


# --- configurations -----------------------------------------------------------------------------

def nginx_conf(variant: str, listen: str, origin: int, tmp: Path) -> str:
    gzip = "gzip on;\n    gzip_types text/event-stream application/x-ndjson;"
    extra = {"default": "", "unbuffered": "proxy_buffering off;",
             "gzip": f"proxy_http_version 1.1;\n    {gzip}",
             "gzip-unbuffered": f"proxy_buffering off;\n    {gzip}"}[variant]
    return nginx_config(listen, origin, tmp, "default", extra=extra)


APACHE_MODULES = "/usr/lib/apache2/modules"


def apache_conf(variant: str, listen: str, origin: int, tmp: Path, fcgi_port: int | None) -> str:
    modules = ["mpm_event", "authz_core", "proxy", "proxy_http", "proxy_fcgi", "filter", "deflate", "env", "headers"]
    user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    proxy = {"fcgi": f"ProxyPass / fcgi://127.0.0.1:{fcgi_port}/",
             "fcgi-flushpackets": f"ProxyPass / fcgi://127.0.0.1:{fcgi_port}/ flushpackets=on\n"
                                  "AddOutputFilterByType DEFLATE text/html text/event-stream application/x-ndjson",
             "deflate": f"ProxyPass / http://127.0.0.1:{origin}/\n"
                        "AddOutputFilterByType DEFLATE text/html text/event-stream application/x-ndjson"}[variant]
    loads = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in modules)
    return f"""\
# written by targets/chains.py for the conformance suite (apache, {variant})
ServerRoot {tmp}
ServerName localhost
Listen {listen}
PidFile {tmp}/httpd.pid
ErrorLog {tmp}/error.log
LogLevel warn
DefaultRuntimeDir {tmp}
Mutex file:{tmp} default
{user}{loads}
{proxy}
"""


def haproxy_conf(variant: str, listen: str, origin: int, tmp: Path) -> str:
    nodelay = "    option http-no-delay\n" if variant in ("nodelay", "gzip-nodelay", "gzip-fixed") else ""
    types = "text/html" if variant == "gzip-fixed" else "text/html text/event-stream application/x-ndjson"
    gzip = f"    compression algo gzip\n    compression type {types}\n" if "gzip" in variant else ""
    return f"""\
# written by targets/chains.py for the conformance suite (haproxy, {variant})
global
    maxconn 256
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
{nodelay}frontend fe
    bind {listen}
    default_backend be
backend be
{gzip}    server origin 127.0.0.1:{origin}
"""


def varnish_vcl(variant: str, listen: str, origin: int, tmp: Path) -> str:
    response = {"default": "", "nostream": "    set beresp.do_stream = false;\n",
                "gzip": "    set beresp.do_gzip = true;\n"}[variant]
    return f"""\
# written by targets/chains.py for the conformance suite (varnish, {variant})
vcl 4.1;
backend default {{ .host = "127.0.0.1"; .port = "{origin}"; }}
sub vcl_recv {{ return (pass); }}
sub vcl_backend_response {{
{response}}}
"""


def caddyfile(variant: str, listen: str, origin: int, tmp: Path) -> str:
    inner = {"default": f"reverse_proxy 127.0.0.1:{origin}",
             "buffered": f"reverse_proxy 127.0.0.1:{origin} {{\n        buffer_responses\n    }}",
             "encode": f"encode gzip {{\n        minimum_length 64\n    }}\n    reverse_proxy 127.0.0.1:{origin}",
             "encode-html": "encode gzip {\n        minimum_length 64\n        match {\n"
                            "            header Content-Type text/html*\n        }\n    }\n"
                            f"    reverse_proxy 127.0.0.1:{origin}"}[variant]
    return f"""\
# written by targets/chains.py for the conformance suite (caddy, {variant})
{{
    admin off
    auto_https off
}}
http://{listen} {{
    {inner}
}}
"""


def proxy_argv(chain: Chain, listen: str, origin: int, tmp: Path, fcgi_port: int | None) -> tuple[list[str], dict]:
    """The proxy's command line (its configuration written into ``tmp``) and its environment."""
    exe = find(PROGRAMS[chain.proxy])
    env = dict(os.environ)
    if chain.proxy == "nginx":
        conf = tmp / "nginx.conf"
        conf.write_text(nginx_conf(chain.variant, listen, origin, tmp))
        return [exe, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)], env
    if chain.proxy == "apache":
        conf = tmp / "httpd.conf"
        conf.write_text(apache_conf(chain.variant, listen, origin, tmp, fcgi_port))
        return [exe, "-DFOREGROUND", "-f", str(conf)], env
    if chain.proxy == "haproxy":
        conf = tmp / "haproxy.cfg"
        conf.write_text(haproxy_conf(chain.variant, listen, origin, tmp))
        return [exe, "-db", "-f", str(conf)], env
    if chain.proxy == "varnish":
        vcl = tmp / "chain.vcl"
        vcl.write_text(varnish_vcl(chain.variant, listen, origin, tmp))
        vcl.chmod(0o644)
        return [exe, "-F", "-a", listen, "-f", str(vcl), "-n", str(tmp / "varnish"), "-s", "malloc,16m",
                "-p", "vsl_space=1M", "-p", "thread_pool_min=5"], env
    if chain.proxy == "caddy":
        conf = tmp / "Caddyfile"
        conf.write_text(caddyfile(chain.variant, listen, origin, tmp))
        env.update(HOME=str(tmp), XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"))
        return [exe, "run", "--config", str(conf), "--adapter", "caddyfile"], env
    raise ValueError(chain.proxy)


def main(name: str, address: str, origin_port: int) -> int:
    from .launcher import _die_with_parent
    chain = CHAINS[name]
    if find(PROGRAMS[chain.proxy]) is None:
        print(f"{PROGRAMS[chain.proxy]} is not installed ({INSTALL_HINTS[chain.proxy]})", file=sys.stderr)
        return 3
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"conformance-chain-{name}-"))
    tmp.chmod(0o755)   # Apache's and Varnish's unprivileged children read and write in it
    try:
        fcgi_port = None
        if chain.origin == "fcgi":   # the probe as php-fpm serves an app, and over HTTP
            fcgi_port = _free_port(avoid=origin_port)
            argv = [sys.executable, "-m", f"{__package__}.probe_origins", "fcgi", str(fcgi_port), str(origin_port)]
        else:
            argv = [sys.executable, "-m", "conformance.probe", "--port", str(origin_port)]
        origin = subprocess.Popen(argv, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        procs.append(origin)
        for port in (origin_port, fcgi_port):
            if port and not _wait_listening(port, origin):
                print(f"the probe did not start on port {port}", file=sys.stderr)
                return 1
        argv, env = proxy_argv(chain, address, origin_port, tmp, fcgi_port)
        proxy = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent)
        procs.append(proxy)
        return first_exit(procs, proxy, (chain.proxy, "the probe"), tmp)
    finally:
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


# --- built-in targets ---------------------------------------------------------------------------

COUNT = 5   # events per stream; the interval is the probe's, 1 s × the time scale


def builtins() -> list:
    from .registry import Builtin   # here: the registry imports this module while it loads
    out = []
    for name, c in CHAINS.items():
        role = (f"holds ({'under compression only' if c.holds == 'compressed' else 'the stream'})" if c.holds
                else "the fix of " + " and ".join(f"chain-{f}" for f in c.fix_of) if c.fix_of else "streams")
        out.append(Builtin(f"chain-{name}", ("{python}", "-m", f"{__package__}.chains", name, "{address}", "{origin_port}"),
                           f"the probe (SSE) behind {c.proxy}: {c.what}; {role}",
                           path="/sse/{count}?interval={interval}", profile="sse", interval=1.0,
                           requires=(f"program:{PROGRAMS[c.proxy]}",), install_hint=INSTALL_HINTS[c.proxy],
                           reference=True))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in CHAINS or not sys.argv[3].isdigit():
        sys.exit(f"usage: python -m targets.chains {{{','.join(CHAINS)}}} HOST:PORT ORIGIN_PORT")
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
