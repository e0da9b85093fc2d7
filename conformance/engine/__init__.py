"""The ``engine`` layer: one run of the suite without pytest. Starting targets (built-in servers,
``--app``, targets files), recording their scenarios, settling between them, judging with the
catalogue, the CI gate and the diagnosis. It may import ``checks``, ``scenarios``, ``analysis``,
``wire`` and ``targets/``; never ``report`` or ``plugin`` (``docs/design.md``, "Layers").
"""
