"""The ``scenarios`` layer: what the suite records for a target, one module per scenario (or
family of scenarios), each a run function that takes a ``Context`` and returns plain data with an
``error`` and a ``to_dict()``. ``base`` holds the context, the registry and the plain exchanges
(``get``, ``get-http10``, ``head``). It may import ``analysis`` and ``wire``; it judges nothing
and never imports ``targets/`` (``docs/design.md``, "Layers").
"""
