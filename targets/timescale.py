"""The one knob the reference targets add to the seed: a factor on every sleep.

The seed must run exactly as written, so instead of editing its ``time.sleep`` calls we hand it
a ``time`` whose ``sleep`` is scaled. The factor comes from the environment so that the seed's
own command line (web.py reads ``sys.argv[1]`` as the address) stays untouched.
"""
import os
import types

ENV = "CONFORMANCE_TIME_SCALE"


def factor() -> float:
    return float(os.environ.get(ENV, "1.0"))


def scaled_time(real_time):
    """A stand-in for the ``time`` module whose ``sleep`` multiplies by the time scale."""
    scale = factor()
    shim = types.SimpleNamespace(**{k: getattr(real_time, k) for k in dir(real_time) if not k.startswith("__")})
    shim.sleep = lambda seconds: real_time.sleep(seconds * scale)
    return shim
