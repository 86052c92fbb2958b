import pytest

from extrapypi.services.accounts import (
    AccountError,
    CredentialCache,
    check_password,
    hash_password,
)


def test_password_over_72_bytes_is_refused_not_truncated():
    with pytest.raises(AccountError, match="72 bytes"):
        hash_password("é" * 37, rounds=4)  # 74 bytes in UTF-8
    assert check_password("x" * 72, hash_password("x" * 72, rounds=4))


def test_short_password_is_refused():
    with pytest.raises(AccountError, match="at least"):
        hash_password("ab", rounds=4)


def test_wrong_password_and_garbage_hash_fail():
    hashed = hash_password("right", rounds=4)
    assert not check_password("wrong", hashed)
    assert not check_password("right", "not-a-bcrypt-hash")


def test_credential_cache_keys_on_password_and_hash():
    cache = CredentialCache("s" * 32, ttl_seconds=60)
    cache.remember("alice", "pw", "$hash1")
    assert cache.verified("alice", "pw", "$hash1")
    assert not cache.verified("alice", "pw", "$hash2")  # password changed: new hash
    assert not cache.verified("alice", "other", "$hash1")
    assert not cache.verified("bob", "pw", "$hash1")


def test_credential_cache_is_bounded_and_can_be_off():
    cache = CredentialCache("s" * 32, ttl_seconds=60, max_entries=2)
    for n in range(3):
        cache.remember(f"u{n}", "pw", "h")
    assert not cache.verified("u0", "pw", "h")
    assert cache.verified("u2", "pw", "h")
    off = CredentialCache("s" * 32, ttl_seconds=0)
    off.remember("a", "b", "c")
    assert not off.verified("a", "b", "c")
