"""The server and proxy matrix: the countdown on the servers and proxies people deploy it on.

Each target is started by the suite on loopback, as its own process group, and stopped with it
(``targets/launcher.py``). The names are part of the contract (DESIGN.md); ``--target all`` runs
them all. Servers run with their own defaults, but for what the suite needs (a loopback address,
a short graceful shutdown); a program that is not installed makes its target ``skip`` with the
install hint (``Builtin.missing``).

| name | stack |
| --- | --- |
| ``webpy`` | the corrected app on web.py's own server, cheroot (``registry.py``) |
| ``webpy-waitress`` | the corrected app (WSGI) under waitress |
| ``webpy-gunicorn-sync`` | … under gunicorn, sync worker (gunicorn's default: one worker) |
| ``webpy-gunicorn-gthread`` | … under gunicorn, gthread worker, four threads |
| ``webpy-wsgiref`` | … under the standard library's ``wsgiref.simple_server`` |
| ``asgi-uvicorn`` | the ASGI port (``asgi_app.py``) under uvicorn |
| ``asgi-hypercorn`` | the ASGI port under hypercorn |
| ``webpy-nginx`` | Debian's nginx in front of the ``webpy`` target, nginx's proxy defaults |
| ``webpy-nginx-unbuffered`` | … with ``proxy_buffering off`` |
| ``webpy-nginx-gzip`` | … with ``gzip on`` (as Debian's stock nginx.conf) |
| ``webpy-seed-waitress`` | the seed verbatim (WSGI) under waitress |
"""
from __future__ import annotations

from targets.nginx import INSTALL_HINT as NGINX_HINT
from targets.nginx import VARIANTS as NGINX_VARIANTS
from targets.registry import Builtin

PY = "{python}"


def _pip(name: str) -> str:
    return f"pip install {name}"


def builtins() -> list[Builtin]:
    out = [
        Builtin("webpy-waitress", (PY, "-m", "waitress", "--listen={address}", "targets.wsgi:webpy"),
                "the corrected app under waitress", requires=("module:waitress",), install_hint=_pip("waitress")),
        Builtin("webpy-gunicorn-sync", (PY, "-m", "gunicorn", "--bind", "{address}", "--worker-class", "sync",
                                        "--graceful-timeout", "1", "targets.wsgi:webpy"),
                "the corrected app under gunicorn's sync worker (one worker, gunicorn's default)",
                requires=("module:gunicorn",), install_hint=_pip("gunicorn")),
        Builtin("webpy-gunicorn-gthread", (PY, "-m", "gunicorn", "--bind", "{address}", "--worker-class", "gthread",
                                           "--threads", "4", "--graceful-timeout", "1", "targets.wsgi:webpy"),
                "the corrected app under gunicorn's gthread worker (one worker, four threads)",
                requires=("module:gunicorn",), install_hint=_pip("gunicorn")),
        Builtin("webpy-wsgiref", (PY, "-m", "targets.wsgi", "wsgiref", "webpy", "{address}"),
                "the corrected app under the standard library's wsgiref.simple_server"),
        Builtin("asgi-uvicorn", (PY, "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
                                 "--timeout-graceful-shutdown", "1", "targets.asgi_app:app"),
                "the countdown's ASGI port under uvicorn", requires=("module:uvicorn",), install_hint=_pip("uvicorn")),
        Builtin("asgi-hypercorn", (PY, "-m", "hypercorn", "--bind", "{address}", "--graceful-timeout", "1",
                                   "targets.asgi_app:app"),
                "the countdown's ASGI port under hypercorn", requires=("module:hypercorn",),
                install_hint=_pip("hypercorn")),
    ]
    for variant, (what, _) in NGINX_VARIANTS.items():
        name = "webpy-nginx" if variant == "default" else f"webpy-nginx-{variant}"
        out.append(Builtin(name, (PY, "-m", "targets.nginx", variant, "{address}"),
                           f"Debian's nginx in front of the corrected app on cheroot: {what}",
                           requires=("program:nginx",), install_hint=NGINX_HINT))
    out.append(Builtin("webpy-seed-waitress", (PY, "-m", "waitress", "--listen={address}", "targets.wsgi:seed"),
                       "the cookbook's seed verbatim under waitress", requires=("module:waitress",),
                       install_hint=_pip("waitress")))
    return out
