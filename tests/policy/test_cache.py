"""The compiled-pack cache returns the same law, and ignores directories others can write."""

from __future__ import annotations

from pathlib import Path

from sharewise.policy.cache import load_law_cached
from sharewise.policy.load import load_law


def test_second_load_comes_from_the_cache_and_is_identical(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_law_cached(None, cache)
    entries = list(cache.glob("law-*.pickle"))
    assert len(entries) == 1
    second = load_law_cached(None, cache)
    assert second.content_hash == first.content_hash == load_law().content_hash
    assert [r.id for r in second.all_rules()] == [r.id for r in first.all_rules()]


def test_a_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    law = load_law_cached(None, cache)
    (entry,) = cache.glob("law-*.pickle")
    entry.write_bytes(b"not a pickle")
    again = load_law_cached(None, cache)
    assert again.content_hash == law.content_hash


def test_a_world_writable_cache_directory_is_not_trusted(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_law_cached(None, cache)
    (entry,) = cache.glob("law-*.pickle")
    entry.write_bytes(b"planted")
    cache.chmod(0o777)
    law = load_law_cached(None, cache)  # must not read the planted file
    assert law.authority("snap") is not None
    assert entry.read_bytes() == b"planted"  # and must not write into an unsafe directory
