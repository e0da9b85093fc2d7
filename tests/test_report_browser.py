"""report.html renders every shape of browser record the product writes, with production's strict
template environment (``conformance.report.html.environment``: an undefined name is an error).

The records are built from the browser module's own dataclasses, as the browser scenario builds
them: a countdown page with a screenshot, a holder page with iframes, a stream read by
``EventSource`` and one read by a ``fetch()`` body reader, a page whose load failed, an engine that
could not be judged, and a skip. A record the report cannot show as a browser view would fall
back to its raw fields; each test asserts the browser view itself is in the page.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict
from pathlib import Path

import pytest

from conformance.scenarios import browser
from conformance.scenarios.browser import BrowserRecording, PageRecord, StreamRecord
from conformance.report import write_html


def _png(width: int = 2, height: int = 2) -> bytes:
    """A tiny valid PNG (white pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _countdown_page(url: str = "http://127.0.0.1:1/3", **kw) -> PageRecord:
    import base64
    groups = {"open": {"arrived_s": 0.01, "inserted_s": 0.02, "frame_s": 0.03}}
    for k, n in enumerate((3, 2, 1)):
        groups[f"i{n}"] = {"arrived_s": 1.0 + k, "inserted_s": 1.01 + k, "frame_s": 1.02 + k, "rendered_s": 1.03 + k}
    groups["end"] = {"arrived_s": 4.0, "inserted_s": 4.01, "frame_s": None}
    page = PageRecord(url=url, status=200, reason="OK", content_type="text/html", loaded=True,
                      navigation={"request_start": 0.0, "response_start": 0.005}, first_paint_s=0.03,
                      groups=groups, screenshot={"at_s": 2.0, "note": "mid-way <b>shot</b>",
                                                 "png_base64": base64.b64encode(_png()).decode()})
    for k, v in kw.items():
        setattr(page, k, v)
    return page


def _holder_page() -> PageRecord:
    frames = [{"src": f"/{n}", "inserted_s": 0.1 * k, "page": asdict(_countdown_page(f"http://127.0.0.1:1/{n}"))}
              for k, n in enumerate((10, 9, 8))]
    frames.append({"src": "/7", "inserted_s": 0.4, "page": None})
    return PageRecord(url="http://127.0.0.1:1/holder", status=200, content_type="text/html", loaded=True,
                      iframes=frames)


def _stream(profile: str, api: str) -> StreamRecord:
    if profile == "sse":
        events = [[0.1 * k, "message" if k % 2 else "token", f"data {k}", ""] for k in range(5)]
        network = [[0.1 * k - 0.001, e[1], e[2]] for k, e in enumerate(events)]
    else:
        events = [[0.1 * k, 6, '{"n":1}\n'] for k in range(5)]
        network = [[0.1 * k - 0.001, 6, 6] for k in range(5)]
    return StreamRecord(url="http://127.0.0.1:1/stream", profile=profile, api=api, status=200, reason="OK",
                        request_headers=[["Accept-Encoding", "gzip"]],
                        response_headers=[["Content-Type", "text/event-stream" if profile == "sse" else
                                           "application/x-ndjson"]],
                        head_s=0.01, clock="clock note", events=events, body_bytes=30, end="complete",
                        end_s=0.6, network=network)


SHAPES = {
    "countdown": lambda: BrowserRecording(scenario="browser", url="http://127.0.0.1:1/3", browser="Chromium 1",
                                          count=3, interval_s=1.0, countdown=_countdown_page(),
                                          holder_note="no holder page"),
    "holder": lambda: BrowserRecording(scenario="browser", url="http://127.0.0.1:1/3", browser="Chromium 1",
                                       count=3, countdown=_countdown_page(), holder=_holder_page()),
    "eventsource": lambda: BrowserRecording(scenario="browser", url="http://127.0.0.1:1/stream",
                                            browser="Chromium 1", stream=_stream("sse", "EventSource")),
    "fetch": lambda: BrowserRecording(scenario="browser", url="http://127.0.0.1:1/stream", browser="Chromium 1",
                                      stream=_stream("ndjson", "fetch() body reader")),
    "load-error": lambda: BrowserRecording(
        scenario="browser", url="http://127.0.0.1:1/3", browser="Chromium 1",
        countdown=PageRecord(url="http://127.0.0.1:1/3", load_error="net::ERR_CONNECTION_REFUSED <x>")),
    "error": lambda: BrowserRecording(scenario="browser", url="http://127.0.0.1:1/3",
                                      error="Chromium did not start: <boom>"),
    "skip": lambda: BrowserRecording(scenario="browser", url="http://127.0.0.1:1/3",
                                     skip_reason="no Chromium: apt-get install chromium"),
}

# what the report must show of each shape (escaped text), proving the browser view was rendered
SHOWN = {
    "countdown": ["countdown page:", "data:image/png;base64,", "mid-way &lt;b&gt;shot&lt;/b&gt;", "painted (s)"],
    "holder": ["holder page:", "iframes:", "/9", "groups seen"],
    "eventsource": ["stream page:", "EventSource", "event 1 (token)", "raw recorder (s)"],
    "fetch": ["stream page:", "fetch() body reader", "line 1"],
    "load-error": ["countdown page:", "net::ERR_CONNECTION_REFUSED &lt;x&gt;"],
    "error": ["Chromium did not start: &lt;boom&gt;"],
    "skip": [],
}


def _report_dir(tmp_path: Path, records: dict[str, BrowserRecording]) -> Path:
    (tmp_path / "recordings").mkdir()
    targets, results = [], []
    for name, rec in records.items():
        href = f"recordings/{name}-browser.json"
        (tmp_path / href).write_text(json.dumps(rec.to_dict()))
        targets.append({"id": name, "url": rec.url, "profile": "countdown", "interval_s": 1.0})
        verdict = "skip" if rec.skip_reason else "error" if rec.error else "pass"
        results.append({"target": name, "check": "browser.progressive-render", "level": "SHOULD",
                        "verdict": verdict, "spec": "", "requirement": "r", "observed": "o", "metrics": {},
                        "recording": href})
    (tmp_path / "results.json").write_text(json.dumps(
        {"schema": 1, "suite": {"name": "s", "version": "1"}, "started_at": "x", "duration_s": 0,
         "targets": targets, "results": results}))
    return tmp_path


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_browser_record_shape_renders(tmp_path, shape):
    rec = SHAPES[shape]()
    view = browser.report_view(json.loads(json.dumps(rec.to_dict())))   # raises if a shape is not handled
    for page in (view["countdown"], view["holder"], view["stream"]):
        if page is not None:
            assert set(page) >= set(browser.page_shape(name="", url=""))   # every key the template reads
    text = write_html(_report_dir(tmp_path, {shape: rec})).read_text()
    for needle in SHOWN[shape]:
        assert needle in text, needle
    assert "<b>shot</b>" not in text and "<boom>" not in text


def test_all_shapes_in_one_report(tmp_path):
    text = write_html(_report_dir(tmp_path, {k: f() for k, f in SHAPES.items()})).read_text()
    assert all(needle in text for needles in SHOWN.values() for needle in needles)


def test_page_shape_refuses_unknown_fields():
    with pytest.raises(TypeError, match="unknown fields"):
        browser.page_shape(name="x", url="y", colums=[])
