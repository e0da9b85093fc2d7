"""The exchanges the suite records for a target; each check names the one it reads."""
from conformance.recorder import Exchange

# After a HEAD response's head, keep listening this long for bytes that must not come. The
# seed's body follows its head at once, so half a second is plenty on loopback and remote.
HEAD_LISTEN_S = 0.5

SCENARIOS: dict[str, Exchange] = {
    "get": Exchange("get"),
    "get-http10": Exchange("get-http10", http_version="1.0"),
    "head": Exchange("head", "HEAD", after_end_wait=HEAD_LISTEN_S),
}
ORDER = list(SCENARIOS)
