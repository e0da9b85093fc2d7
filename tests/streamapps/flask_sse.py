"""Flask: ``/events`` yields server-sent events with ``stream_with_context``, one every INTERVAL."""
import time

from flask import Flask, Response, stream_with_context

from streamapps import COUNT, INTERVAL, sse

app = Flask(__name__)


@app.get("/events")
def events():
    @stream_with_context
    def generate():
        for n in range(COUNT):
            if n:
                time.sleep(INTERVAL)
            yield sse(n)
    return Response(generate(), mimetype="text/event-stream")


@app.get("/large")
def large():
    """32 MiB in 64 KiB pieces, for delivery.large-body (``--large-url /large``)."""
    piece = b"x" * 65536
    return Response((piece for _ in range(512)), mimetype="application/octet-stream")
