"""Small apps of each kind that the suite's own tests run with ``--app`` and ``stream_check``
(tests/test_app.py). Each event stream's pace is its module's ``INTERVAL`` and ``COUNT``,
overridable with the ``STREAMAPPS_INTERVAL`` and ``STREAMAPPS_COUNT`` environment variables."""
import os

INTERVAL = float(os.environ.get("STREAMAPPS_INTERVAL", "0.3"))
COUNT = int(os.environ.get("STREAMAPPS_COUNT", "8"))


def sse(n: int) -> bytes:
    return f"id: {n}\nevent: tick\ndata: {{\"n\": {n}}}\n\n".encode()
