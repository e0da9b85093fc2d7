"""Targets files (docs/design.md's TOML format): what a valid file gives, and that every mistake is
reported with the file, the line and the key (a usage error, exit 4, before anything starts)."""
from pathlib import Path

import pytest

from conformance.engine.targets_file import load

GOOD = '''\
# two remote targets
[[target]]
id = "prod-countdown"            # the name used in results and reports
url = "https://example.org/10"
profile = "countdown"
interval = 1.0
headers = { Authorization = "Bearer x" }
expect_bursts = 5
large_url = "https://example.org/big.iso"
insecure = false

[[target]]
id = "events"
url = "http://127.0.0.1:8080/events"
interval = 2
count = 3
insecure = true
concurrent_streams = 8
'''


def write(tmp_path, text) -> Path:
    f = tmp_path / "targets.toml"
    f.write_text(text)
    return f


def test_designs_example_loads(tmp_path):
    a, b = load(write(tmp_path, GOOD), defaults={"headers": [("X-Run", "1")]})
    assert (a.id, a.url, a.profile, a.interval, a.expect_bursts, a.insecure) == (
        "prod-countdown", "https://example.org/10", "countdown", 1.0, 5, False)
    assert a.headers == [("X-Run", "1"), ("Authorization", "Bearer x")]
    assert a.large_url == "https://example.org/big.iso"
    # without a profile the response decides (Target.profile_of); the interval is as given
    assert (b.profile, b.interval, b.count, b.insecure) == (None, 2.0, 3, True)
    assert (a.concurrent_streams, b.concurrent_streams) == (5, 8)


def test_insecure_defaults_to_the_command_line(tmp_path):
    (t,) = load(write(tmp_path, '[[target]]\nid = "a"\nurl = "https://h/1"\n'), defaults={"insecure": True})
    assert t.insecure


@pytest.mark.parametrize("body, line, key, why", [
    ('id = "a"\nurl = "http://h/1"\nintervall = 2\n', 4, "intervall", "unknown key"),
    ('id = "a"\nurl = "http://h/1"\ninterval = "fast"\n', 4, "interval", "expected a number"),
    ('id = "a"\nurl = "http://h/1"\ninterval = 0\n', 4, "interval", "positive number"),
    ('id = "a"\nurl = "http://h/1"\ncount = 0\n', 4, "count", "at least 1"),
    ('id = "a"\nurl = "http://h/1"\ninsecure = "yes"\n', 4, "insecure", "expected bool"),
    ('id = "a"\nurl = "http://h/1"\nprofile = "video"\n', 4, "profile", "one of countdown"),
    ('id = "a"\nurl = "ftp://h/1"\n', 3, "url", "scheme must be http or https"),
    ('id = "a"\nurl = "http://h/1"\nlarge_url = "file:///x"\n', 4, "large_url", "scheme must be http or https"),
    ('id = "a"\nurl = "http://h/1"\nconcurrent_streams = 65\n', 4, "concurrent_streams", "must be 1 to 64"),
    ('id = "a"\n', 1, "url", "missing"),
])
def test_a_mistake_names_file_line_and_key(tmp_path, body, line, key, why):
    f = write(tmp_path, "[[target]]\n" + body)
    with pytest.raises(pytest.UsageError) as e:
        load(f)
    message = str(e.value)
    assert message.startswith(f"{f}:{line}: target 1, key {key!r}: "), message
    assert why in message


def test_the_second_table_is_named_by_its_own_line(tmp_path):
    f = write(tmp_path, GOOD + '\n[[target]]\nid = "c"\nurl = "http://h/1"\nheaders = "Authorization: x"\n')
    with pytest.raises(pytest.UsageError, match=rf"^{f}:23: target 3, key 'headers': expected dict"):
        load(f)


def test_not_toml_or_no_targets(tmp_path):
    with pytest.raises(pytest.UsageError, match=rf"^{tmp_path / 'targets.toml'}: .*line 2"):
        load(write(tmp_path, '[[target]]\nid = "a\n'))
    with pytest.raises(pytest.UsageError, match="no \\[\\[target\\]\\] tables"):
        load(write(tmp_path, '[target]\nid = "a"\n'))
    with pytest.raises(pytest.UsageError, match="--targets-file .*missing.toml"):
        load(tmp_path / "missing.toml")
