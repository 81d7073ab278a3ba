"""The hashes the access file stores (web/access.py), and the checks against them.

Only hashes are stored: PBKDF2-SHA256 for passwords (slow on purpose, so a stolen file does
not give them away), SHA-256 for tokens (random 256-bit strings, which need no slowing).
Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

PASSWORD_SCHEME = "pbkdf2_sha256"
# OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about 0.3 s per login on this project's CPU.
PASSWORD_ITERATIONS = 600_000
TOKEN_PREFIX = "qa_"  # makes a leaked token easy to recognise in logs and secret scanners
_SHA256 = re.compile(r"[0-9a-f]{64}")


def hash_password(password: str, *, iterations: int = PASSWORD_ITERATIONS) -> str:
    """A PBKDF2-SHA256 string holding the salt and iteration count, to store in the file."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", _utf8(password), salt, iterations)
    return f"{PASSWORD_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    scheme, iterations, salt, digest = encoded.split("$")
    candidate = hashlib.pbkdf2_hmac(
        "sha256", _utf8(password), base64.b64decode(salt), int(iterations)
    )
    return scheme == PASSWORD_SCHEME and hmac.compare_digest(candidate, base64.b64decode(digest))


def is_password_hash(value: str) -> bool:
    """Whether `value` has the form of a stored password hash."""
    parts = value.split("$")
    if len(parts) != 4 or parts[0] != PASSWORD_SCHEME or not parts[1].isdigit():
        return False
    try:
        return len(base64.b64decode(parts[2], validate=True)) >= 8 and bool(
            base64.b64decode(parts[3], validate=True)
        )
    except ValueError:
        return False


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(_utf8(token)).hexdigest()


def _utf8(text: str) -> bytes:
    # A lone surrogate (possible in JSON and form input) must not crash a check: it is
    # encoded as is, and so simply matches nothing that was stored.
    return text.encode("utf-8", "surrogatepass")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.cache
def unknown_user_hash() -> str:
    """A hash no password matches, checked for a name no user has, so that the check takes
    as long as for a user's."""
    return hash_password(secrets.token_urlsafe(16))


def is_token_hash(value: str) -> bool:
    """Whether `value` has the form of a stored token hash."""
    return _SHA256.fullmatch(value) is not None


def same_digest(digest: str, stored: str) -> bool:
    """Whether two hashes are equal, compared in constant time."""
    return hmac.compare_digest(digest, stored)
