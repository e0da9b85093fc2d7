"""The seed app, corrected. Same routes, pieces and schedule as ``webpy_seed``, but:

- no hand-set ``Transfer-Encoding``: it is a hop-by-hop header that the server owns (RFC 9112
  §6.1); set by the app, cheroot sends it twice and strict clients reject the response;
- ``Content-Type`` carries a charset, so a browser need not hold the first 1024 bytes while it
  looks for one (HTML's encoding prescan);
- HEAD answers with headers only (RFC 9110 §9.3.2), where the seed's generator sends a body.

Run it as ``python targets/webpy_app.py 127.0.0.1:PORT``.
"""
import sys
import time as _real_time

import web

from targets.timescale import scaled_time

time = scaled_time(_real_time)

urls = (
    "/", "count_holder",
    "/(\\d+)", "count_down",
)
app = web.application(urls, globals(), autoreload=False)
HTML = "text/html; charset=utf-8"


def log_piece(piece: str) -> str:
    """Each piece is logged to stderr as it is handed to the server, so the suite can see from
    the server's side when production stops (e.g. after the client went away)."""
    print("piece", _real_time.monotonic(), len(piece), file=sys.stderr, flush=True)
    return piece


class count_down:
    def GET(self, count):
        web.header("Content-Type", HTML)
        yield log_piece("<h2>Prepare for Launch!</h2>")
        yield log_piece("<ul>")
        for i in range(int(count), 0, -1):
            time.sleep(1)
            yield log_piece("<li>Liftoff in %s...</li>" % i)
        yield log_piece("</ul>")
        time.sleep(1)
        yield log_piece("<h1>Lift off</h1>")

    def HEAD(self, count):
        web.header("Content-Type", HTML)
        return ""


class count_holder:
    def GET(self):
        web.header("Content-Type", HTML)
        boxes, delay, countdown = 4, 3, 10
        for i in range(boxes):
            yield '<iframe src="/%d" width="200" height="500"></iframe>' % (countdown - i)
            time.sleep(delay)

    def HEAD(self):
        web.header("Content-Type", HTML)
        return ""


if __name__ == "__main__":
    app.run()
