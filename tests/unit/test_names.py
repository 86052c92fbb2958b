import random

import pytest
from packaging.version import Version

from extrapypi.services.names import canonical_version, normalize_name, version_sort_key

VERSIONS = (
    "0.1 0.9.dev3 1.0.dev0 1.0a1.dev1 1.0a1 1.0a2 1.0b1 1.0rc1 1.0 1.0+a 1.0+abc 1.0+abc.5 "
    "1.0+abc.10 1.0+b 1.0+b.1 1.0+1 1.0.post0 1.0.post1.dev2 1.0.post1 1.0.0.1 1.0.1 1.1 2.0 "
    "10.0 2013.10.5 1!0.1 99999999999999.0 100000000000000.0"
).split()


def test_sort_key_orders_like_pep_440():
    rng = random.Random(1)
    for _ in range(200):
        shuffled = VERSIONS[:]
        rng.shuffle(shuffled)
        by_key = [Version(v) for v in sorted(shuffled, key=version_sort_key)]
        assert by_key == sorted(Version(v) for v in shuffled)


def test_equal_versions_share_sort_key_and_canonical_form():
    assert version_sort_key("1.0") == version_sort_key("1.0.0") == version_sort_key("v1.0")
    assert canonical_version("1.0.0") == canonical_version("1.0") == "1"
    assert canonical_version("1.0-RC1") == "1rc1"


@pytest.mark.parametrize(
    ("name", "normalized"),
    [("Foo_Bar", "foo-bar"), ("foo.bar", "foo-bar"), ("FOO--bar__baz", "foo-bar-baz")],
)
def test_normalize_name(name, normalized):
    assert normalize_name(name) == normalized


@pytest.mark.parametrize("name", ["", "-foo", "foo-", "foo bar", "../etc", "fo\x00o"])
def test_invalid_names_are_refused(name):
    with pytest.raises(ValueError):
        normalize_name(name)
