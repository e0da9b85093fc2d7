"""One Target builder (``conformance.analysis.target.build_target``) for the command line, a
targets file, ``--app`` and ``stream_check``: the same checks everywhere, each message naming
where the bad value came from (as pytest-timeout's ``_validate_timeout(timeout, where)``), and
the countdown's default interval filled in one place."""
from __future__ import annotations

import pytest

from conformance.analysis.target import COUNTDOWN_INTERVAL_S, TargetError, build_target, option
from conformance.engine import targets_file
from conformance.plugin.fixture import run_stream_check


def test_the_countdown_interval_is_filled_once_and_an_explicit_none_stays():
    assert build_target("a", "http://h/1", option).interval == COUNTDOWN_INTERVAL_S
    assert build_target("a", "http://h/1", option, profile="sse").interval is None
    assert build_target("a", "http://h/1", option, profile=None).interval is None
    assert build_target("a", "http://h/1", option, interval=None).interval is None   # a built-in without a schedule
    assert build_target("a", "http://h/1", option, interval=2).interval == 2.0


@pytest.mark.parametrize("field, value, message", [
    ("interval", -1, "--interval must be a positive number of seconds, not -1"),
    ("interval", float("nan"), "--interval must be a positive number of seconds"),
    ("watch", 0, "--watch must be a positive number of seconds, not 0"),
    ("count", 0, "--count must be at least 1, not 0"),
    ("expect_bursts", 0, "--expect-bursts must be at least 1, not 0"),
    ("concurrent_streams", 65, "--concurrent-streams must be 1 to 64, not 65"),
    ("profile", "video", "--profile must be one of countdown, sse, ndjson, bytes, not 'video'"),
])
def test_a_bad_value_names_its_option(field, value, message):
    with pytest.raises(TargetError) as e:
        build_target("a", "http://h/1", option, **{field: value})
    assert str(e.value).startswith(message)


def test_a_targets_file_names_its_table_and_key(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text('[[target]]\nid = "a"\nurl = "http://h/1"\n\n[[target]]\nid = "b"\nurl = "http://h/2"\ninterval = -2\n')
    with pytest.raises(pytest.UsageError, match=rf"^{f}:8: target 2, key 'interval': must be a positive number"):
        targets_file.load(f)


def test_stream_check_names_its_argument(tmp_path):
    with pytest.raises(ValueError, match=r"^stream_check\(interval=\.\.\.\): must be a positive number of seconds"):
        run_stream_check("http://127.0.0.1:9/1", tmp_path, interval=-1)
    with pytest.raises(ValueError, match=r"^stream_check\(concurrent_streams=\.\.\.\): must be 1 to 64"):
        run_stream_check("http://127.0.0.1:9/1", tmp_path, concurrent_streams=0)
