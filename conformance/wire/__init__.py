"""The ``wire`` layer, the ground floor: bytes and times. Sockets and TLS, the request as sent,
every read timestamped (``recorder``), the recording as data (``recording``), the tolerant
HTTP/1.1 reader (``tolerant``), content codings decoded read by read (``codings``) and redirects
(``redirects``). It judges nothing and imports no other layer of the package (``docs/design.md``,
"Layers"; the import contract in ``pyproject.toml`` fails the tests otherwise).
"""
