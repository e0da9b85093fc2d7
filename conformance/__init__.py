"""HTTP streaming conformance suite: does a response really arrive progressively, with correct
HTTP/1.1 framing, or is it buffered on the way? See docs/design.md and README.md."""
__version__ = "0.1.0"
SUITE_NAME = "http-streaming-conformance"
