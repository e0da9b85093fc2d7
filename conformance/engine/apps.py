"""``--app MODULE:ATTR``: the user's own WSGI or ASGI app, started by the suite under each server
it may be deployed on, and behind nginx, one target per (server, path, front).

The app is told apart (WSGI or ASGI) by importing it once in a child interpreter
(``python -m conformance.engine.apps inspect MODULE:ATTR``), so the app's own import side effects
(Django's settings, a monkeypatching library, an import error) never touch the suite's
interpreter, and an import error becomes a one-line usage error (exit 4). The child sees what
the suite's interpreter sees: the current directory first, then ``sys.path`` (so a module found
by ``import`` in a user's test is found by the servers too).

Servers are started as the built-in matrix's are (``targets/launcher.py``: a process group of
its own, torn down on success, failure, Ctrl-C and SIGTERM, and by the kernel if the suite is
killed), with the matrix's own command lines (``targets/matrix.py``), the user's app in place of
the reference app. Behind nginx, ``targets/nginx.py`` runs the app's server as its upstream in
the same process group. Without ``--profile``/``--interval`` an app's target has no known
schedule: the profile comes from the response and the schedule-free rule judges
(``conformance/analysis/inferred.py``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from conformance.analysis.target import Target, TargetError, build_target, option
from conformance.targets import launcher
from conformance.targets.nginx import INSTALL_HINT, VARIANTS, find_nginx
from conformance.targets.registry import BUILTINS, Builtin

KINDS = ("wsgi", "asgi")
INSPECT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Server:
    """A server the user's app can run under. ``argv`` per app kind it serves; ``{app}`` is the
    app's MODULE:ATTR (``{address}``, ``{host}``, ``{port}``, ``{python}`` as in the launcher).
    ``native``: the kind it is chosen for by default."""
    name: str
    native: str
    argv: dict[str, tuple[str, ...]]
    requires: tuple[str, ...]
    install_hint: str
    description: str

    def missing(self) -> str | None:
        return Builtin(self.name, (), "", requires=self.requires, install_hint=self.install_hint).missing()


def _from_matrix(builtin: str, app_arg: str = "{app}") -> tuple[str, ...]:
    """A matrix target's command line (targets/matrix.py) with the user's app in place of the
    reference app (its last argument)."""
    return tuple(BUILTINS[builtin].argv[:-1]) + (app_arg,)


def servers() -> dict[str, Server]:
    py = "{python}"

    def req(builtin):
        b = BUILTINS[builtin]
        return b.requires, b.install_hint
    out = [
        Server("cheroot", "wsgi", {"wsgi": (py, "-m", "cheroot", "--bind", "{address}", "{app}")},
               ("module:cheroot",), "pip install cheroot", "cheroot (web.py's server), its default 10 threads"),
        Server("waitress", "wsgi", {"wsgi": _from_matrix("webpy-waitress")}, *req("webpy-waitress"),
               "waitress, its default 4 threads"),
        Server("gunicorn-sync", "wsgi", {"wsgi": _from_matrix("webpy-gunicorn-sync")}, *req("webpy-gunicorn-sync"),
               "gunicorn's sync worker (one worker, gunicorn's default)"),
        Server("gunicorn-gthread", "wsgi", {"wsgi": _from_matrix("webpy-gunicorn-gthread")},
               *req("webpy-gunicorn-gthread"), "gunicorn's gthread worker (one worker, four threads)"),
        # uvicorn's WSGI interface and hypercorn's WSGI wrapper serve a WSGI app when asked by name.
        Server("uvicorn", "asgi", {"asgi": _from_matrix("asgi-uvicorn"),
                                   "wsgi": _from_matrix("asgi-uvicorn")[:-1] + ("--interface", "wsgi", "{app}")},
               *req("asgi-uvicorn"), "uvicorn"),
        Server("hypercorn", "asgi", {"asgi": _from_matrix("asgi-hypercorn", "asgi:{app}"),
                                     "wsgi": _from_matrix("asgi-hypercorn", "wsgi:{app}")},
               *req("asgi-hypercorn"), "hypercorn"),
        Server("daphne", "asgi", {"asgi": (py, "-m", "daphne", "-b", "{host}", "-p", "{port}", "{app}")},
               ("module:daphne",), "pip install daphne", "daphne (Django Channels' server)"),
    ]
    return {s.name: s for s in out}


SERVER_NAMES = ("cheroot", "waitress", "gunicorn-sync", "gunicorn-gthread", "uvicorn", "hypercorn", "daphne")


def fronts() -> dict[str, str]:
    """Front name -> targets/nginx.py variant. ``--behind nginx`` means the first two."""
    return {("nginx" if v == "default" else f"nginx-{v}"): v for v in VARIANTS}


def expand_behind(values: list[str]) -> list[str | None]:
    """``--behind`` values -> fronts, with None (the server alone) first."""
    known = fronts()
    out: list[str | None] = [None]
    for v in values:
        names = ["nginx", "nginx-unbuffered"] if v == "nginx" else [v]
        for n in names:
            if n not in known:
                raise AppError(f"--behind {v}: not a known front; known: nginx (its defaults and proxy_buffering "
                               f"off), {', '.join(known)}")
            if n not in out:
                out.append(n)
    return out


class AppError(Exception):
    """The app cannot be used (bad MODULE:ATTR, an import error, neither WSGI nor ASGI): one line."""


@dataclass(frozen=True)
class AppTarget(Target):
    """A target the suite serves itself: the user's app under one server, maybe behind a front."""
    app: str = ""                    # MODULE:ATTR
    kind: str = "wsgi"               # wsgi or asgi
    server_name: str = ""
    front: str | None = None         # None, "nginx", "nginx-unbuffered", …
    path: str = "/"
    app_cwd: str = field(default_factory=os.getcwd)
    app_pythonpath: str = ""
    name: str = ""                   # what the targets are named after (the app, or a targets file's id)

    def describe(self) -> dict:
        """The target's entry ``app`` in results.json (the report's server × front table)."""
        return {"app": self.app, "name": self.name or self.app, "kind": self.kind, "server": self.server_name,
                "front": self.front, "path": self.path}


def target_id(name: str, server: str, front: str | None, path: str) -> str:
    return f"{name}@{server}{'+' + front if front else ''}{path}"


SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def check_spec(spec: str) -> None:
    if not SPEC.match(spec):
        raise AppError(f"--app {spec!r}: expected MODULE:ATTR, e.g. myapp.asgi:app")


def child_pythonpath() -> str:
    """The current directory, then the suite's own ``sys.path`` (as directories)."""
    seen, out = set(), []
    for p in [os.getcwd()] + sys.path:
        p = os.path.abspath(p or os.getcwd())
        if p not in seen and os.path.isdir(p):
            seen.add(p)
            out.append(p)
    return os.pathsep.join(out)


def child_env(pythonpath: str) -> dict[str, str]:
    return {"PYTHONPATH": pythonpath + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}


_kinds: dict[tuple[str, str, str], str] = {}


def inspect_app(spec: str, pythonpath: str | None = None, cwd: str | None = None) -> str:
    """The app's kind ("wsgi" or "asgi"), by importing it in a child interpreter; AppError says
    in one line why it cannot be used."""
    check_spec(spec)
    pythonpath = child_pythonpath() if pythonpath is None else pythonpath
    cwd = cwd or os.getcwd()
    key = (spec, pythonpath, cwd)
    if key in _kinds:
        return _kinds[key]
    root = str(Path(__file__).resolve().parents[2])   # the folder that holds the conformance package
    env = dict(os.environ, **child_env(pythonpath))
    env["PYTHONPATH"] = root + os.pathsep + env["PYTHONPATH"]
    try:
        proc = subprocess.run([sys.executable, "-m", "conformance.engine.apps", "inspect", spec], capture_output=True,
                              text=True, env=env, cwd=cwd, timeout=INSPECT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AppError(f"--app {spec}: importing it took more than {INSPECT_TIMEOUT_S:g} s") from None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise AppError(f"--app {spec}: could not be inspected: {tail}") from None
    if "error" in answer:
        raise AppError(f"--app {spec}: {answer['error']}")
    _kinds[key] = answer["kind"]
    return answer["kind"]


def kind_of(obj) -> str:
    """"asgi" for an async callable taking (scope, receive, send) or an instance whose
    ``__call__`` is async; "wsgi" for a callable taking (environ, start_response); ValueError
    otherwise."""
    import inspect
    if inspect.isclass(obj):
        raise ValueError(f"is the class {obj.__name__}, not an application (an instance or a function)")
    if not callable(obj):
        raise ValueError(f"is a {type(obj).__name__}, not a callable WSGI or ASGI application")
    call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) or not hasattr(obj, "__call__") else obj.__call__
    if inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(call):
        return "asgi"
    try:
        params = [p for p in inspect.signature(obj).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        varargs = any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return "wsgi"   # a builtin callable without a signature: WSGI is the older, sync protocol
    if len(params) == 2 or (varargs and len(params) < 2):
        return "wsgi"
    if len(params) == 3:
        return "asgi"   # a sync callable returning the awaitable (an ASGI middleware, say)
    raise ValueError(f"takes {len(params)} positional arguments: neither WSGI (environ, start_response) "
                     "nor ASGI (scope, receive, send)")


def _inspect_main(spec: str) -> int:
    """In the child: import MODULE, resolve ATTR, print {"kind": …} or {"error": one line}."""
    import importlib
    import traceback
    module_name, _, attr = spec.partition(":")
    sys.path.insert(0, os.getcwd())

    def answer(**kw) -> int:
        sys.stdout.write("\n" + json.dumps(kw) + "\n")
        sys.stdout.flush()
        return 0
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            return answer(error=f"no module named {e.name!r} (looked in the current directory and the suite's sys.path)")
        return answer(error=f"importing {module_name} failed: ModuleNotFoundError: {e}")
    except BaseException as e:  # noqa: BLE001 - anything the app's import raises is the user's to see
        frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(sys.prefix)]
        where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        if isinstance(e, SyntaxError):
            where = f" ({e.filename}:{e.lineno})"
        text = str(e).splitlines()[0] if str(e) else ""
        return answer(error=f"importing {module_name} failed: {type(e).__name__}: {text}{where}")
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            return answer(error=f"module {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    try:
        return answer(kind=kind_of(obj))
    except ValueError as e:
        return answer(error=f"{attr} {e}")


def build_targets(apps: list[str], paths: list[str] | None = None, server_names: list[str] | None = None,
                  behind: list[str] | None = None, *, name: str | None = None, where: Callable[[str], str] = option,
                  **common) -> list[AppTarget]:
    """One target per (app, server, path, front). ``common``: Target fields (profile, interval,
    headers, watch, …), checked by ``build_target`` (TargetError, naming ``where`` a value came
    from). AppError for a bad spec, path, server or front, or an app that cannot be imported."""
    paths = list(paths or ["/"])
    for p in paths:
        if not p.startswith("/") or any(c.isspace() for c in p):
            raise AppError(f"--app-path {p!r}: expected a path starting with /, e.g. /events")
    table = servers()
    for s in server_names or []:
        if s not in table:
            raise AppError(f"--server {s!r}: not a known server; known: {', '.join(table)}")
    front_list = expand_behind(list(behind or []))
    pythonpath = child_pythonpath()
    out = []
    for spec in apps:
        kind = inspect_app(spec, pythonpath)
        chosen = list(dict.fromkeys(server_names or [])) or default_servers(kind, table)
        for server in chosen:
            for front in front_list:
                for path in paths:
                    tid = target_id(name or spec, server, front, path)
                    out.append(build_target(tid, None, where, cls=AppTarget, app=spec, kind=kind, server_name=server,
                                            front=front, path=path, app_pythonpath=pythonpath, name=name or spec,
                                            **common))
    return out


def default_servers(kind: str, table: dict[str, Server] | None = None) -> list[str]:
    """The installed servers made for the app's kind; all of them (each then ``skip`` with its
    install hint) when none is installed."""
    table = table or servers()
    fit = [s.name for s in table.values() if s.native == kind]
    installed = [n for n in fit if table[n].missing() is None]
    return installed or fit


def command(target: AppTarget) -> tuple[list[str] | None, str | None]:
    """(the argv for the launcher, or None with why it is skipped)."""
    server = servers()[target.server_name]
    if target.kind not in server.argv:
        kinds = " or ".join(k.upper() for k in server.argv)
        return None, (f"{server.name} serves {kinds} apps; {target.app} is {target.kind.upper()} "
                      f"(the servers for it: {', '.join(default_servers(target.kind))})")
    why = server.missing()
    if why:
        return None, why
    argv = [a.replace("{app}", target.app) for a in server.argv[target.kind]]
    if target.front is None:
        return argv, None
    if find_nginx() is None:
        return None, f"nginx not installed ({INSTALL_HINT})"
    # targets/nginx.py runs the server as its upstream, on a port of its own, in the same group.
    upstream = [a.replace("{address}", "{upstream_address}").replace("{host}", "{upstream_host}")
                .replace("{port}", "{upstream_port}") for a in argv]
    return ["{python}", "-m", "conformance.targets.nginx", fronts()[target.front], "{address}", "--", *upstream], None


def launch(trun) -> None:
    """``TargetRun.launch`` for an app target: start its server (and front), set its URL, or
    say why it is skipped or could not start."""
    target: AppTarget = trun.target
    argv, why = command(target)
    if argv is None:
        trun.skip_reason = why
        return
    try:
        trun.server = launcher.start(re.sub(r"[^A-Za-z0-9._@+-]+", "_", target.id), argv, trun.run.options.time_scale,
                                     env=child_env(target.app_pythonpath), cwd=target.app_cwd)
    except launcher.LaunchError as e:
        trun.launch_error = str(e)
        return
    served = f"http://{trun.server.host}:{trun.server.port}"
    large_url = target.large_url
    if large_url and large_url.startswith("/"):   # --large-url /PATH: on the app's own server
        large_url = served + large_url
    trun.target = replace(target, url=served + target.path, large_url=large_url)


def add_options(group) -> None:
    # one line each in `python -m conformance --help`; docs/guide.md has the details
    group.addoption("--app", action="append", default=[], metavar="MODULE:ATTR",
                    help="your WSGI/ASGI app, served on loopback (repeatable)")
    group.addoption("--app-path", action="append", default=[], metavar="PATH",
                    help="the app's endpoint(s) (repeatable; default /)")
    group.addoption("--server", action="append", default=[], metavar="NAME",
                    help="server(s) for --app (default: all installed)")
    group.addoption("--behind", action="append", default=[], metavar="FRONT",
                    help="--app behind nginx too: its defaults, and proxy_buffering off")


def targets_from_options(opt, **common) -> list[AppTarget]:
    """The targets of ``--app`` (empty without it); pytest.UsageError (exit 4) for what cannot be used."""
    import pytest
    if not opt.app:
        for name, given in (("--app-path", opt.app_path), ("--server", opt.server), ("--behind", opt.behind)):
            if given:
                raise pytest.UsageError(f"{name} needs --app MODULE:ATTR")
        return []
    try:
        return build_targets(list(opt.app), list(opt.app_path), list(opt.server), list(opt.behind), **common)
    except (AppError, TargetError) as e:
        raise pytest.UsageError(str(e)) from None


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "inspect":
        sys.exit(_inspect_main(sys.argv[2]))
    sys.exit("usage: python -m conformance.engine.apps inspect MODULE:ATTR")
