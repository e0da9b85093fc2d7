"""The seed app, corrected. Same routes, pieces and schedule as ``webpy_seed``, but:

- no hand-set ``Transfer-Encoding``: it is a hop-by-hop header that the server owns (RFC 9112
  §6.1); set by the app, cheroot sends it twice and strict clients reject the response;
- ``Content-Type`` carries a charset, so a browser need not hold the first 1024 bytes while it
  looks for one (HTML's encoding prescan);
- HEAD answers with headers only (RFC 9110 §9.3.2), where the seed's generator sends a body.

It also serves what the delivery-condition checks need, in the seed's spirit:

- ``GET /sse/N`` and ``GET /ndjson/N``: the countdown's schedule as Server-Sent Events
  (``text/event-stream``, one event per write group) and as NDJSON (one line per write group);
- ``GET /large?size=BYTES``: a large file really on disk, streamed in fixed blocks by a
  generator (what the seed's ``time.sleep`` stands in for). The file is created sparse in a
  temporary directory of the app's own the first time a size is asked for, so a gigabyte costs
  neither time nor disk; it is removed when the app exits. The blocks are 1 MiB.

Run it as ``python targets/webpy_app.py 127.0.0.1:PORT``.
"""
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time as _real_time

import web

if __package__:
    from .timescale import scaled_time
else:   # run as a script, ``{targets}/webpy_app.py`` (web.py reloads its own file by name)
    from timescale import scaled_time

time = scaled_time(_real_time)

urls = (
    "/", "count_holder",
    "/(\\d+)", "count_down",
    "/sse/(\\d+)", "sse_countdown",
    "/ndjson/(\\d+)", "ndjson_countdown",
    "/large", "large_file",
)
app = web.application(urls, globals(), autoreload=False)
HTML = "text/html; charset=utf-8"
BLOCK = 1024 * 1024           # the large file is read and yielded in blocks of this size
LARGE_MAX = 64 * 1024 ** 3        # no larger file is made (a sparse file costs no disk, but still)


def log_piece(piece):
    """Each piece is logged to stderr as it is handed to the server, so the suite can see from
    the server's side when production stops (e.g. after the client went away)."""
    print("piece", _real_time.monotonic(), len(piece), file=sys.stderr, flush=True)
    return piece


def countdown_groups(count):
    """The countdown's write groups: what the producer writes at 0, 1, …, count+1 intervals."""
    yield "prepare", None
    for i in range(count, 0, -1):
        yield "count", i
    yield "liftoff", None


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


class sse_countdown:
    """The countdown as Server-Sent Events: one event per write group, one interval apart."""
    def GET(self, count):
        web.header("Content-Type", "text/event-stream; charset=utf-8")
        web.header("Cache-Control", "no-cache")
        for k, (kind, i) in enumerate(countdown_groups(int(count))):
            if k:
                time.sleep(1)
            data = {"prepare": "Prepare for Launch!", "liftoff": "Lift off"}.get(kind) or "Liftoff in %d..." % i
            yield log_piece("id: %d\nevent: %s\ndata: %s\n\n" % (k, kind, data))

    def HEAD(self, count):
        web.header("Content-Type", "text/event-stream; charset=utf-8")
        return ""


class ndjson_countdown:
    """The countdown as newline-delimited JSON: one line per write group, one interval apart."""
    def GET(self, count):
        web.header("Content-Type", "application/x-ndjson")
        for k, (kind, i) in enumerate(countdown_groups(int(count))):
            if k:
                time.sleep(1)
            yield log_piece(json.dumps({"seq": k, "event": kind, "liftoff_in": i}) + "\n")

    def HEAD(self, count):
        web.header("Content-Type", "application/x-ndjson")
        return ""


_large_dir = None
_large_lock = threading.Lock()


def large_path(size):
    """The app's file of ``size`` bytes, made (sparse) the first time it is asked for."""
    global _large_dir
    with _large_lock:
        if _large_dir is None:
            _large_dir = tempfile.mkdtemp(prefix="webpy-large-")
            atexit.register(shutil.rmtree, _large_dir, True)
        path = os.path.join(_large_dir, "large-%d.bin" % size)
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.truncate(size)
            os.replace(path + ".tmp", path)
        return path


def read_blocks(path):
    """The file, block by block: never more than one block in memory. The blocks already sent
    are dropped from the page cache as it goes, so a large file fills no memory anywhere (and
    reads as fast the first time as the next)."""
    with open(path, "rb") as f:
        done = 0
        while True:
            block = f.read(BLOCK)
            if not block:
                return
            done += len(block)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(f.fileno(), 0, done, os.POSIX_FADV_DONTNEED)
            yield block


class large_file:
    """A large file streamed from disk in fixed blocks (``?size=BYTES``, default 1 GiB)."""
    def GET(self):
        size = _size(web.input(size=None).size)
        if size is None:
            raise web.badrequest("size must be a whole number of bytes up to %d" % LARGE_MAX)
        path = large_path(size)
        web.header("Content-Type", "application/octet-stream")
        web.header("Content-Length", str(size))
        return read_blocks(path)

    def HEAD(self):
        size = _size(web.input(size=None).size)
        if size is None:
            raise web.badrequest()
        web.header("Content-Type", "application/octet-stream")
        web.header("Content-Length", str(size))
        return ""


def _size(text):
    if text is None:
        return 1024 ** 3
    if not text.isdigit() or int(text) > LARGE_MAX:
        return None
    return int(text)


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


def _exit_on_sigterm(signum, frame):
    sys.exit(0)   # runs the atexit hooks: the large files go with the app


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app.run()
