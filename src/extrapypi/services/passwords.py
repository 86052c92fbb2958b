"""What a password people choose must be: long enough, and not one of the most common.

The list (``extrapypi/data/common-passwords.txt``) is the first 10,000 lines of the list Django
ships (``django/contrib/auth/common-passwords.txt.gz``, most common first, lower case); the file's
header names the version. To rebuild it: take those lines from a Django wheel, keep the header.
Checks are case-insensitive and ignore surrounding spaces, as Django's are: ``Password1`` is as
guessable as ``password1``.
"""

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

DEFAULT_MIN_LENGTH = 12
COMMON_PASSWORDS = "common-passwords.txt"


class WeakPassword(ValueError):
    """The password breaks the policy; the message says how (accounts turn it into AccountError)."""


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, read once per process."""
    text = files("extrapypi").joinpath("data", COMMON_PASSWORDS).read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("# "))


def is_common(password: str) -> bool:
    return password.strip().lower() in common_passwords()


@dataclass(frozen=True)
class PasswordPolicy:
    """``extrapypi.min_password_length`` (default 12) and the common-password list."""

    min_length: int = DEFAULT_MIN_LENGTH
    refuse_common: bool = True

    def check(self, password: str) -> None:
        if len(password) < self.min_length:
            raise WeakPassword(
                f"The password must have at least {self.min_length} characters "
                "(a few words make a long password that is easy to remember)."
            )
        if self.refuse_common and is_common(password):
            raise WeakPassword(
                "That password is one of the 10,000 most common ones, which attackers try "
                "first; choose another."
            )


#: For passwords people set when nothing says otherwise.
DEFAULT_POLICY = PasswordPolicy()
#: No rule beyond bcrypt's limit: the documented first users of a development database.
NO_POLICY = PasswordPolicy(min_length=1, refuse_common=False)
