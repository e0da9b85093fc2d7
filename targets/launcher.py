"""Start a reference target in its own process on a free loopback port, and always stop it.

Why a process: the seed blocks in ``time.sleep`` inside web.py's worker threads, and a target
must not share the suite's interpreter (its GIL, its signal handlers, its crash). Teardown has
three layers so that no server outlives the run: ``stop()`` from the caller's ``finally``, an
``atexit`` hook for whatever is still registered, and ``PR_SET_PDEATHSIG`` so the kernel sends
SIGTERM to the server if the suite itself is killed outright.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .timescale import ENV as TIME_SCALE_ENV

STDERR_KEEP = 64 * 1024  # bytes of a server's stderr kept for the report
# A checkout (``conformance/`` and ``targets/`` side by side) puts its root on the servers' PYTHONPATH;
# an installed wheel (these servers are ``conformance.targets`` there) needs none, and its package
# folder must not become a top-level entry of anyone's path.
_PARENT = Path(__file__).resolve().parent.parent
CHECKOUT_ROOT = str(_PARENT) if (_PARENT / "conformance").is_dir() else None
_running: set["Running"] = set()


class LaunchError(RuntimeError):
    """The target could not be started; the message says why (with its stderr)."""


@dataclass(eq=False)
class Running:
    name: str
    host: str
    port: int
    process: subprocess.Popen
    stderr_path: Path
    _tmpdir: tempfile.TemporaryDirectory = field(repr=False)
    _final_stderr: str | None = field(default=None, repr=False)
    origin_port: int | None = None   # a second port the target was given ({origin_port}), e.g. a chain's origin

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def large_path(self, size: int) -> str | None:
        """The path of this built-in target's large body of ``size`` bytes (None: it has none)."""
        from .conditions import large_path   # a server module: loaded only when a large body is asked for
        return large_path(self.name, size)

    def stderr(self) -> str:
        """The server's stderr so far (the last STDERR_KEEP bytes)."""
        if self._final_stderr is not None:
            return self._final_stderr
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - STDERR_KEEP))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def terminate(self) -> None:
        """Send SIGTERM to the server's process group without waiting (``stop()`` waits)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self, grace: float = 3.0) -> None:
        """Terminate the server's whole process group, then reap it (SIGKILL after ``grace`` s)."""
        _running.discard(self)
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 3.0)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.process.wait()
        # The server's own children (nginx's upstream, say) are in its group and got the same
        # signal, but may still be exiting after it: stop() returns once none is left.
        for sig in (None, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
            deadline = time.monotonic() + 3.0
            while _group_alive(self.process.pid) and time.monotonic() < deadline:
                time.sleep(0.02)  # polling /proc: a process's exit is not an event we can wait on
            if not _group_alive(self.process.pid):
                break
        if self._final_stderr is None:
            self._final_stderr = self.stderr()
            self._tmpdir.cleanup()


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C and SIGTERM from fork until the server is registered: an interrupt in between
    would leave a server that no ``stop()`` knows of (the kernel's parent-death signal kills it
    only once the suite has exited, too late for a check that nothing is left). Signals are
    handled in the main thread only, so elsewhere there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler not in (signal.SIG_IGN, None):
            previous[sig] = signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in held:
            signal.raise_signal(sig)   # now delivered to the handler restored above


def start(name: str, argv: list[str], time_scale: float = 1.0, ready_timeout: float = 20.0,
          host: str = "127.0.0.1", env: dict[str, str] | None = None, cwd: str | None = None) -> Running:
    """Start ``argv`` and wait until it accepts connections. In ``argv``, ``{address}`` becomes
    HOST:PORT (``{host}`` and ``{port}`` its parts), ``{python}`` this interpreter,
    ``{targets}`` this folder and ``{origin_port}`` a second free port (a chain's origin, kept as
    ``Running.origin_port``). Retries on a port taken between probe and bind. ``env``: variables
    set for the server (a ``PYTHONPATH`` goes after a checkout's root); ``cwd``: its working
    directory (default: a temporary one)."""
    last_error = ""
    for _attempt in range(3):
        port = free_port(host)
        origin_port = next((free_port(host) for a in argv if "{origin_port}" in a), None)
        tmp = tempfile.TemporaryDirectory(prefix=f"conformance-{name}-")
        stderr_path = Path(tmp.name) / "stderr.log"
        child_env = dict(os.environ, **{TIME_SCALE_ENV: repr(time_scale), "PYTHONUNBUFFERED": "1"}, **(env or {}))
        if CHECKOUT_ROOT:
            child_env["PYTHONPATH"] = CHECKOUT_ROOT + os.pathsep + child_env.get("PYTHONPATH", "")
        cmd = [a.replace("{address}", f"{host}:{port}").replace("{host}", host).replace("{port}", str(port))
               .replace("{origin_port}", str(origin_port))
               .replace("{python}", sys.executable).replace("{targets}", str(Path(__file__).resolve().parent))
               for a in argv]
        with _interrupts_deferred(), open(stderr_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=child_env,
                                    cwd=cwd or tmp.name, start_new_session=True, preexec_fn=_die_with_parent)
            running = Running(name, host, port, proc, stderr_path, tmp, origin_port=origin_port)
            _running.add(running)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                return running
            except OSError:
                time.sleep(0.05)  # polling for the listener; nothing to wait on instead
        last_error = running.stderr()[-2000:]
        running.stop()
        if "Address already in use" not in last_error:
            break
    raise LaunchError(f"target {name} did not start: {last_error.strip() or 'no output'}")


def terminate_all() -> None:
    """SIGTERM to every registered server's process group, without waiting (an interrupt: they
    shut down while the run writes its results; ``stop()`` then reaps them)."""
    for running in list(_running):
        running.terminate()


def kill_all() -> None:
    """SIGKILL every registered server's process group, without waiting (a second Ctrl-C: the
    process is about to end; the kernel's parent-death signal covers any server missed)."""
    for running in list(_running):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.process.pid, signal.SIGKILL)


@atexit.register
def stop_all() -> None:
    for running in list(_running):
        running.stop()
