"""The request budget: how many requests each scenario sends to a target, and which fit.

An LLM endpoint costs money per request and its method (``POST``) is not safe to repeat
(RFC 9110 §9.2.1: "Request methods are considered 'safe' if their defined semantics are
essentially read-only [...] Of the request methods defined by this specification, the GET, HEAD,
OPTIONS, and TRACE methods are defined to be safe"). So before the first request the run
prints its plan (``Plan.lines``): each scenario, the requests it sends and with which method,
and the total. ``--max-requests N`` caps the requests to each target; with an unsafe method and no
``--max-requests`` the cap is ``UNSAFE_DEFAULT``, stated in the plan. Scenarios are admitted in
``PRIORITY`` order while they fit (the ones that decide first: the main stream, the request a
browser sends, one client); one that does not fit is not recorded and its checks are ``skip``
"over the request budget (--max-requests N)". Scenarios that only mean something for GET
(``GET_ONLY``) are not sent for another method. The suite's own requests (``OPTIONS`` while it
waits for a quiet server, ``conformance.settle``) never use the user's method; the plan lists them
and does not count them against the budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from conformance.wire.request import is_safe

UNSAFE_DEFAULT = 3
# Admission order under a budget: what decides first. Scenarios not named come after, in ORDER.
PRIORITY = ["get", "get-compressed", "httpx", "requests", "node-fetch", "browser", "get-http10", "disconnect",
            "concurrent", "chain", "h2", "h3", "head", "large"]
GET_ONLY = {"head": "HEAD is compared with GET: it means something only for a GET target"}
OVER = "over the request budget (--max-requests {n})"
TRIAL = ("with no budget, a scenario recorded beside the others that waited for a worker is recorded once "
         "more, one request each (docs/scheduling.md, results.json targets[].schedule); with a budget, never")
OWN = ("the suite's own: OPTIONS to the target's URL while it waits for a quiet server, only after a "
       "scenario left the server busy (conformance.engine.settle); never the target's method, not counted")


@dataclass
class Row:
    scenario: str
    requests: int            # to the target, this run (times --repeat)
    methods: str             # e.g. "POST" or "POST, then HEAD"
    note: str = ""           # what else it asks (the reference, a built-in's holder page)
    sent: bool = True
    reason: str = ""         # why not sent

    def to_dict(self) -> dict:
        d = {"requests": self.requests if self.sent else 0, "planned": self.requests, "methods": self.methods,
             "sent": self.sent}
        if self.note:
            d["note"] = self.note
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass
class Plan:
    target: str
    method: str
    budget: int | None                       # None: no cap
    budget_given: bool                       # --max-requests (else the unsafe default, or none)
    rows: list[Row] = field(default_factory=list)
    bound: str = ""                          # how long the run may take (time_bound), one line

    @property
    def total(self) -> int:
        return sum(r.requests for r in self.rows if r.sent)

    def excluded(self) -> dict[str, str]:
        """Scenario → why it is not recorded."""
        return {r.scenario: r.reason for r in self.rows if not r.sent}

    def budget_text(self) -> str:
        if self.budget is None:
            return "no request budget (--max-requests N sets one)"
        if self.budget_given:
            return f"budget {self.budget} requests (--max-requests {self.budget})"
        return (f"budget {self.budget} requests: the default for {self.method}, a method that is not safe to "
                f"repeat (RFC 9110 §9.2.1); --max-requests N to change it")

    def lines(self) -> list[str]:
        out = [f"{self.target}: {self.method}, {self.budget_text()}"]
        for r in self.rows:
            if r.sent:
                out.append(f"  {r.scenario:<16} {r.requests:>3}  {r.methods}" + (f"  ({r.note})" if r.note else ""))
            else:
                out.append(f"  {r.scenario:<16}   -  {r.reason}")
        out.append(f"  {'total':<16} {self.total:>3}  requests to this target")
        out.append(f"  ({OWN})")
        if self.budget is None:
            out.append(f"  ({TRIAL})")
        if self.bound:
            out.append(f"  time: {self.bound}")
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "budget": self.budget, "budget_given": self.budget_given,
                "total": self.total, "scenarios": {r.scenario: r.to_dict() for r in self.rows}, "own": OWN}


def requests_of(scenario: str, target, builtin: bool = False, planned=()) -> tuple[int, str, str]:
    """(requests to the target, their methods, a note) for one recording of ``scenario``, among
    the ``planned`` scenarios of the run."""
    m = getattr(target, "method", "GET")
    if scenario == "get-compressed":
        return (2, f"{m}, then HEAD on the same connection", "") if m == "GET" else (1, m, "")
    if scenario == "head":
        return 1, "HEAD", ""
    if scenario == "disconnect":
        if not (builtin or getattr(target, "app", None)):
            return 0, "-", "a remote target: what its server does after a disconnect cannot be seen, nothing sent"
        if getattr(target, "interval", None) is None:
            return 0, "-", "the producer's schedule is not known (--interval): nothing sent"
    if scenario == "concurrent":
        k = max(1, getattr(target, "concurrent_streams", 5) or 5)
        return k, f"{m} ×{k} at once", "and the holder page with its iframes, GET" if builtin else ""
    if scenario == "chain":
        if not getattr(target, "reference", None) and not getattr(target, "builtin", None):
            return 0, "-", "no --reference: nothing to record"
        return 2, f"{m} ×2 (identity, compressed)", "as many to the --reference origin"
    if scenario == "large":
        if not getattr(target, "large_url", None) and not builtin:
            return 0, "-", "no --large-url: nothing to download"
        return 0, "GET", "to the large body's URL (--large-url)"
    if scenario == "h2" and not builtin and not str(getattr(target, "url", "") or "").startswith("https:"):
        return 0, "-", "not https: HTTP/2 is not offered"
    if scenario == "h3":
        if not builtin and not str(getattr(target, "url", "") or "").startswith("https:"):
            return 0, "-", "not https: HTTP/3 is not offered"
        if "get" in planned or "h2" in planned:
            return 1, f"{m} over HTTP/3", "only when the GET's response offers it (Alt-Svc: h3)"
        return 2, f"HEAD, then {m} over HTTP/3", "the HEAD reads Alt-Svc; no HTTP/3 request unless it offers h3"
    if scenario == "browser":
        return 1, m, "and, for a countdown page of a built-in target, its holder page" if builtin else ""
    if scenario in ("browser-webkit", "browser-firefox") and m != "GET":
        return 0, "-", "WebKit and Firefox read GET streams only so far"
    return 1, m, ""


# The bounds a user can count on (docs/scheduling.md, "How long a run takes"), for a default run
# with only a URL on a server that serves several streams at once: S the stream's own length
# (request to its last byte), W its watch window.
BOUND_FACTOR, BOUND_SLACK_S = 3, 10


def time_bound(target, builtin: bool = False) -> str:
    """How long the target's recordings take at most, in words: 3·S + 10 s for a stream of S
    seconds, W + 10 s for one that does not end within its watch window W (s)."""
    watch = target.watch_s() if hasattr(target, "watch_s") else None
    endless = f"an endless stream at most {watch:g} + {BOUND_SLACK_S} s (its watch window, --watch)" if watch else ""
    known = getattr(target, "schedule_known", False) and hasattr(target, "expected_span")
    if known:
        span = target.expected_span()
        head = (f"at most {BOUND_FACTOR} x {span:.1f} + {BOUND_SLACK_S} = {BOUND_FACTOR * span + BOUND_SLACK_S:.0f} s "
                f"for its {span:.1f} s stream")
    else:
        head = f"at most {BOUND_FACTOR} x S + {BOUND_SLACK_S} s, S the stream's own length (learnt from the first GET)"
    extra = ("; a built-in target also records its exclusive scenarios (several streams, the large body, "
             "the disconnect) and the holder page") if builtin else ""
    return (f"{head}; {endless}; a stream more where the server's workers turn out fewer than the scenarios "
            f"(those that waited are recorded again); on a server that serves one stream at a time, about one "
            f"stream per scenario" + extra)


def make_plan(target, scenarios: list[str], repeat: int = 1, builtin: bool = False) -> Plan:
    """The plan for one target: ``scenarios`` (those its selected checks read) in admission
    order, each sent or not (GET_ONLY for another method, else over the budget)."""
    method = getattr(target, "method", "GET")
    given = getattr(target, "max_requests", None)
    budget = given if given is not None else (None if is_safe(method) else UNSAFE_DEFAULT)
    plan = Plan(getattr(target, "id", "?"), method, budget, given is not None)
    try:
        plan.bound = time_bound(target, builtin)
    except Exception:  # noqa: BLE001 - a line of the plan must never cost the run
        plan.bound = ""
    rank = {s: i for i, s in enumerate(PRIORITY)}
    ordered = sorted(scenarios, key=lambda s: (rank.get(s, len(PRIORITY)), scenarios.index(s)))
    used = 0
    for s in ordered:
        n, methods, note = requests_of(s, target, builtin, scenarios)
        n *= max(1, repeat)
        row = Row(s, n, methods + (f", ×{repeat} (--repeat)" if repeat > 1 and n else ""), note)
        if method != "GET" and s in GET_ONLY:
            row.sent, row.reason = False, f"not sent: {GET_ONLY[s]}, and this target is asked with {method}"
        elif n and budget is not None and used + n > budget:
            row.sent, row.reason = False, OVER.format(n=budget)
        else:
            used += n
        plan.rows.append(row)
    return plan
