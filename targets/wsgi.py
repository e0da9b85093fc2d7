"""The web.py countdown apps as WSGI callables, for other WSGI servers.

``targets.wsgi:webpy`` is the corrected app (``webpy_app``), ``targets.wsgi:seed`` the seed
verbatim (``webpy_seed``); each is the app's own ``app.wsgifunc()``, imported only when asked
for. ``python -m targets.wsgi wsgiref APP HOST:PORT`` serves one with the standard library's
``wsgiref.simple_server`` as it comes (one request at a time, HTTP/1.0 responses).
"""
from __future__ import annotations

import sys

APPS = {"webpy": f"{__package__}.webpy_app", "seed": f"{__package__}.webpy_seed"}


def wsgi_app(name: str):
    module = __import__(APPS[name], fromlist=["app"])
    return module.app.wsgifunc()


def __getattr__(name: str):
    if name not in APPS:
        raise AttributeError(name)
    fn = globals()[name] = wsgi_app(name)
    return fn


def serve_wsgiref(app_name: str, address: str) -> None:
    from wsgiref.simple_server import make_server
    host, _, port = address.rpartition(":")
    with make_server(host, int(port), wsgi_app(app_name)) as server:
        server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "wsgiref" or sys.argv[2] not in APPS:
        sys.exit(f"usage: python -m targets.wsgi wsgiref {{{','.join(APPS)}}} HOST:PORT")
    serve_wsgiref(sys.argv[2], sys.argv[3])
