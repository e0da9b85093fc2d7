"""Built-in HTTPS targets: the ASGI countdown over HTTP/2 and a control that buffers over it."""
from .registry import Builtin


def builtins() -> list[Builtin]:
    common = dict(scheme="https", insecure=True, requires=("module:hypercorn", "module:cryptography"),
                  install_hint="pip install hypercorn cryptography")
    return [
        Builtin("asgi-hypercorn-h2", ("{python}", "-m", f"{__package__}.h2_server", "stream", "{address}"),
                "the countdown's ASGI port under hypercorn over HTTPS, offering h2 (self-signed, trusted by target)",
                **common),
        Builtin("control-h2-buffered", ("{python}", "-m", f"{__package__}.h2_server", "buffered", "{address}"),
                "control: holds the whole countdown, then sends it, over HTTP/2", **common),
    ]
