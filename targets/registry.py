"""The built-in targets by name (the names are part of the contract, see docs/design.md)."""
from __future__ import annotations

from dataclasses import dataclass

from .controls import MODES

# The main job runs at the seed's own timing (1 s per item), so its countdown is short enough to
# finish in well under a minute: /5 takes 6 s per request.
DEFAULT_COUNT = 5


@dataclass(frozen=True)
class Builtin:
    name: str
    argv: tuple[str, ...]
    description: str
    path: str = f"/{DEFAULT_COUNT}"
    profile: str | None = "countdown"   # None: from the response, as for a URL
    interval: float | None = 1.0  # the producer's interval at time scale 1; None: not known (inferred)
    # What must be installed: "module:NAME" (a Python module) or "program:NAME" (an executable),
    # and how to install it. A target missing one is skipped with the hint, not started.
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    scheme: str = "http"
    # How many of its own scenarios the suite may record side by side: only for servers we know
    # serve that many connections at once (cheroot runs 10 worker threads), so the suite's own
    # parallelism never changes a verdict. URL targets always get 1.
    parallel_scenarios: int = 1
    # How many requests the server serves at once (its worker threads), where known: shared
    # scenarios side by side never hold more connections than this less RESERVED_WORKERS.
    workers: int | None = None
    insecure: bool = False  # a certificate the target made itself: trusted for this target only
    # A chain's origin: the target was given a second port ({origin_port} in argv) where the
    # origin behind its chain answers the same path; the suite records it as the --reference.
    reference: bool = False

    def url_path(self, count: int | None, time_scale: float = 1.0) -> str:
        """The path the suite asks for: ``path``, or ``/COUNT`` when a count is given; a path with
        ``{count}`` and ``{interval}`` (the probe's) gets them filled in (the interval scaled)."""
        if "{" not in self.path:
            return self.path if count is None else f"/{count}"
        interval = (self.interval or 1.0) * time_scale
        return self.path.format(count=count or DEFAULT_COUNT, interval=f"{interval:g}")

    def missing(self) -> str | None:
        """None when everything the target needs is installed, else what is missing and the hint."""
        import importlib.util
        import shutil
        absent = []
        for req in self.requires:
            kind, _, name = req.partition(":")
            if kind == "module":
                found = importlib.util.find_spec(name) is not None
            else:
                found = (shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")) is not None
            if not found:
                absent.append(name)
        if not absent:
            return None
        return f"{', '.join(absent)} not installed" + (f" ({self.install_hint})" if self.install_hint else "")


BUILTINS: dict[str, Builtin] = {
    "webpy-seed": Builtin("webpy-seed", ("{python}", "{targets}/webpy_seed.py", "{address}"),
                          "the cookbook's seed verbatim on web.py's own server (cheroot)", parallel_scenarios=3,
                          workers=10),
    "webpy": Builtin("webpy", ("{python}", "{targets}/webpy_app.py", "{address}"),
                     "the seed corrected, on web.py's own server (cheroot)", parallel_scenarios=3,
                     workers=10),
}
for _mode, _what in MODES.items():
    BUILTINS[f"control-{_mode}"] = Builtin(
        f"control-{_mode}", ("{python}", "-m", f"{__package__}.controls", _mode, "{address}"), f"control: {_what}")

DEFAULT_TARGETS = ("webpy-seed", "webpy")

# Further built-ins live in modules of their own, each with a ``builtins() -> list[Builtin]``:
# the server/proxy matrix, the delivery-condition controls, the real-stream and client controls, the built-in chains.
for _module in (f"{__package__}.{_name}" for _name in ("matrix", "conditions", "tls_targets", "streams", "client_controls",
                                                      "chains", "coding_controls", "php_nginx", "engine_controls",
                                                      "h3_targets")):
    try:
        _mod = __import__(_module, fromlist=["builtins"])
    except ModuleNotFoundError as _e:
        if _e.name != _module:
            raise
        continue
    for _b in _mod.builtins():
        BUILTINS[_b.name] = _b
