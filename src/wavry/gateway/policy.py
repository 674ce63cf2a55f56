"""Account input rules: one normal form for logins, and the password policy.

Logins (usernames and e-mail addresses) are compared in one normal form — Unicode NFKC, case
folded, surrounding white space removed — at registration and before every lookup, so
``Carol``, `` carol `` and the full-width ``ｃａｒｏｌ`` are one account and share one lockout
counter.

Passwords (NIST SP 800-63B §3.1.1.2): at least :data:`MIN_PASSWORD_LENGTH` characters, at most
:data:`MAX_PASSWORD_LENGTH`, not one of the ~20,000 most common passwords (the bundled list,
``data/COMMON-PASSWORDS.md`` says where it comes from), and not the account's own username or
e-mail address. No composition rules (they make passwords harder to remember, not stronger).
"""

from __future__ import annotations

import functools
import gzip
import re
import unicodedata
from importlib import resources

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "USERNAME_PATTERN",
    "common_passwords",
    "normalize_login",
    "password_problem",
]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
USERNAME_PATTERN = re.compile(r"^[a-z0-9_.-]{3,32}$")  # after normalize_login


def normalize_login(text: str) -> str:
    """NFKC, case folded (NFKC again: folding can leave unnormalised text), stripped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list, lower case (loaded once, ~20k entries, ~1.5 MB in memory)."""
    raw = resources.files("wavry.gateway").joinpath("data/common-passwords.txt.gz").read_bytes()
    text = gzip.decompress(raw).decode("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def password_problem(password: str, username: str, email: str) -> str | None:
    """Why ``password`` is refused for this account, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password must have at most {MAX_PASSWORD_LENGTH} characters"
    folded = normalize_login(password)
    if password.lower().strip() in common_passwords() or folded in common_passwords():
        return "this password is one of the most common ones; choose another"
    local_part = normalize_login(email).partition("@")[0]
    if folded in {normalize_login(username), normalize_login(email), local_part}:
        return "the password must not be the username or e-mail address"
    return None
