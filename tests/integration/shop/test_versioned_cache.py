"""The versioned cache: an entry is served only while the namespace is at the version its reader
saw before producing it; a writer's bump after commit retires every entry at once."""

from __future__ import annotations

from shop.core.cache import bump_after_commit, cached, redis_client
from shop.core.db import transaction

NS = "catalog:1"


def _bump() -> None:
    with transaction():
        bump_after_commit(NS)


def test_an_entry_is_served_until_the_namespace_is_bumped(ctx):
    assert cached(NS, "k", 60, lambda: b"first") == b"first"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"first"
    (key,) = redis_client().keys(f"gs:c:{NS}:*")
    assert 0 < redis_client().ttl(key) <= 60

    _bump()
    assert cached(NS, "k", 60, lambda: b"second") == b"second"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"second"


def test_keys_and_namespaces_do_not_mix(ctx):
    assert cached(NS, "a", 60, lambda: b"a") == b"a"
    assert cached(NS, "b", 60, lambda: b"b") == b"b"
    assert cached("catalog:2", "a", 60, lambda: b"other shop") == b"other shop"
    assert cached(NS, "a", 60, lambda: b"not asked for") == b"a"


def test_what_a_reader_produced_while_a_writer_committed_is_never_served_again(ctx):
    def produce_while_a_writer_commits() -> bytes:
        _bump()  # the writer commits and bumps after this reader read the version
        return b"maybe stale"

    assert cached(NS, "k", 60, produce_while_a_writer_commits) == b"maybe stale"
    assert cached(NS, "k", 60, lambda: b"fresh") == b"fresh"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"fresh"


def test_an_entry_with_bytes_that_look_like_a_version_tag_round_trips(ctx):
    body = b'12:{"items": []}'
    assert cached(NS, "k", 60, lambda: body) == body
    assert cached(NS, "k", 60, lambda: b"not asked for") == body
