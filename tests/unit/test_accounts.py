import pytest

from extrapypi.services.accounts import (
    AccountError,
    CredentialCache,
    check_password,
    hash_password,
)
from extrapypi.services.passwords import NO_POLICY, PasswordPolicy, common_passwords, is_common


def test_password_over_72_bytes_is_refused_not_truncated():
    with pytest.raises(AccountError, match="72 bytes"):
        hash_password("é" * 37, rounds=4)  # 74 bytes in UTF-8
    assert check_password("x" * 72, hash_password("x" * 72, rounds=4))


def test_short_password_is_refused():
    with pytest.raises(AccountError, match="at least 12 characters"):
        hash_password("elevenchars", rounds=4)
    with pytest.raises(AccountError, match="at least 20 characters"):
        hash_password("nineteen characters", rounds=4, policy=PasswordPolicy(20))
    assert check_password("twelve chars", hash_password("twelve chars", rounds=4))


@pytest.mark.parametrize("common", ["12345678910", "Qwerty123456", " 1q2w3e4r5t6y ", "password"])
def test_common_passwords_are_refused_whatever_the_length_setting(common):
    with pytest.raises(AccountError, match="10,000 most common"):
        hash_password(common, rounds=4, policy=PasswordPolicy(min_length=1))


def test_the_shipped_list_has_the_10000_most_common_passwords():
    listed = common_passwords()
    assert len(listed) == 10_000
    assert {"123456", "password", "qwerty", "#1bitch", "desmond1"} <= listed
    assert not any(p.startswith("# ") for p in listed)  # the header is not a password
    assert not is_common("correct horse battery")


def test_no_policy_is_only_for_the_documented_seeds():
    assert check_password("admin", hash_password("admin", rounds=4, policy=NO_POLICY))
    with pytest.raises(AccountError, match="empty"):
        hash_password("", rounds=4, policy=NO_POLICY)


def test_wrong_password_and_garbage_hash_fail():
    hashed = hash_password("right-password", rounds=4)
    assert not check_password("wrong", hashed)
    assert not check_password("right-password", "not-a-bcrypt-hash")


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
