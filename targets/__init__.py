"""Reference servers for the conformance suite: the seed app verbatim, a corrected one, and
negative controls that must fail. Each runs as its own process; see ``launcher``."""
