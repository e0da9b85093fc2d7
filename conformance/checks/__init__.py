"""The ``checks`` layer: the check catalogue (``catalogue``: IDs, levels, quoted requirements,
verdicts) and the checks, one module per spec area; each check quotes the requirement it judges.
It may import ``scenarios``, ``analysis`` and ``wire``; never ``engine``, ``report``, ``plugin``
or ``targets/`` (``docs/design.md``, "Layers").
"""
