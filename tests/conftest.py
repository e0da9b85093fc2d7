"""The suite's own tests under pytest-xdist (README: ``pytest tests -n 2 --dist loadgroup``).

``--dist loadgroup`` with every test in its file's group (``xdist_group``, set here) gives each
test file to one worker, as ``--dist loadfile`` does, so a module's fixture (a whole run of the
suite shared by its tests) runs once, not once per worker. Files in ``ONE_WORKER`` share one
group, so they never run at the same time: the interrupted runs' exit times (about 1 s alone)
went past their 5 s bound, and WebKit's paint times past theirs, in 3 of 3 runs of
test_engines beside test_interrupt (their engines on 2 cores). The files are handed out in the order
collected (not xdist's default for loadfile, most tests first); the longest go first here, so
that none of them starts last and keeps one worker busy alone at the end (measured with
``--durations``; a file not named keeps its place after them). Only the order changes: without
xdist, or with another ``--dist``, every test runs as before.
"""
from __future__ import annotations

import pytest

LONGEST_FIRST = ["test_main_job.py", "test_request.py", "test_shards.py", "test_interrupt.py", "test_app.py",
                 "test_cli.py", "test_browser.py", "test_streams.py", "test_hostile.py", "test_engines.py",
                 "test_tls.py", "test_holes.py", "test_coding_controls.py", "test_h3.py", "test_settle.py",
                 "test_verdicts.py", "test_trial.py", "test_redirects.py", "test_judges_survive.py"]


ONE_WORKER = ("test_engines.py", "test_interrupt.py")


@pytest.hookimpl(tryfirst=True)   # before xdist's own, which reads the groups
def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: a file's own order stays
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group("one-worker" if name in ONE_WORKER else name))


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):   # pytest-xdist's --no-loadscope-reorder
        config.option.loadscopereorder = False
