"""The ``analysis`` layer: pure functions of recordings. A body's units (``units``), the delivery
analysis against a producer's schedule (``timing``), the schedule-free rule (``inferred``) and the
target's configuration and profile (``target``). It may import ``wire`` only; it opens no socket
and judges nothing (``docs/design.md``, "Layers").
"""
