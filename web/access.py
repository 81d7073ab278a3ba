"""Who may do what: users who log in on the page, tokens for the HTTP API, and their roles.

A *reader* may ask, search, list the documents and see the index; an *editor* may also add,
remove and restore documents and see the trash. RETRIEVER_ACCESS_FILE names a TOML file:

    [users.alice]
    role = "editor"
    password = "pbkdf2_sha256$600000$…$…"    # made by: python -m web.access user alice

    [tokens.wiki-bot]
    role = "reader"
    sha256 = "9f86d08…"                       # made by: python -m web.access token wiki-bot
    bases = ["default", "hr"]                 # optional: only these knowledge bases

Without `bases`, a user or token may use every knowledge base, and an editor may also
create, rename, delete and restore bases. With it, only the bases listed, by name: a base
renamed is no longer listed, so the rule fails closed, and only an unrestricted editor
manages bases.

Only hashes are stored (web/credentials.py), and every comparison is constant-time. Without
users or tokens there is no login and everyone is an editor, which app.py allows only on a
loopback address (`check_host`).
"""

from __future__ import annotations

import argparse
import enum
import getpass
import json
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retriever.bases import DEFAULT, BadBaseName, check_name
from retriever.config import is_loopback
from web.credentials import (
    hash_password,
    hash_token,
    is_password_hash,
    is_token_hash,
    new_token,
    same_digest,
    unknown_user_hash,
    verify_password,
)


class Role(enum.IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    READER = 1
    EDITOR = 2

    @property
    def label(self) -> str:
        return {Role.READER: "reader", Role.EDITOR: "editor"}[self]


class AccessError(ValueError):
    """The access file cannot be used, or the app may not listen where asked; says why."""


@dataclass(frozen=True)
class Identity:
    """Who made a request: a user or token name ("" without access control), its role, and
    the knowledge bases it may use (None: every one)."""

    name: str
    role: Role
    bases: frozenset[str] | None = None

    def role_in(self, base: str) -> Role | None:
        """Its role in knowledge base `base`; None where it may not use that base."""
        return self.role if self.bases is None or base in self.bases else None

    @property
    def manages_bases(self) -> bool:
        """Whether it may create, rename, delete and restore knowledge bases."""
        return self.role == Role.EDITOR and self.bases is None


# Without an access file, the one person at this machine may do everything.
ANONYMOUS = Identity("", Role.EDITOR)


@dataclass(frozen=True)
class _Credential:
    role: Role
    digest: str  # a PBKDF2 string for a user, the SHA-256 hex of a token
    bases: frozenset[str] | None = None  # the knowledge bases it may use; None: every one


@dataclass(frozen=True)
class Access:
    """The users and tokens of the access file; empty when there is none."""

    users: Mapping[str, _Credential] = field(default_factory=dict)
    tokens: Mapping[str, _Credential] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        """Whether there is anyone to log in as: if not, there is no access control."""
        return bool(self.users or self.tokens)

    def login(self, name: str, password: str) -> bool:
        """Whether `password` is the password of user `name`. Takes as long for a name that
        does not exist, so the time taken does not tell which names do."""
        credential = self.users.get(name)
        if credential is None:
            verify_password(password, unknown_user_hash())
            return False
        return verify_password(password, credential.digest)

    def user(self, name: str | None) -> Identity | None:
        """The identity of a logged-in page user; ANONYMOUS without access control."""
        if not self.configured:
            return ANONYMOUS
        credential = self.users.get(name or "")
        return Identity(name, credential.role, credential.bases) if name and credential else None

    def uploader(self, name: str | None) -> str | None:
        """Whom a page upload by user `name` counts against: the user's name; "" without
        access control (then the browser); None when the user may not upload (not logged in,
        or a reader: only editors add documents, so only they may fill the upload folder)."""
        identity = self.user(name)
        if identity is None or identity.role != Role.EDITOR:
            return None
        return identity.name

    def bearer(self, token: str | None) -> Identity | None:
        """The identity an API token stands for; ANONYMOUS without access control."""
        if not self.configured:
            return ANONYMOUS
        if not token:
            return None
        digest = hash_token(token)
        found = None
        for name, credential in self.tokens.items():  # no early exit: constant time
            if same_digest(digest, credential.digest):
                found = Identity(name, credential.role, credential.bases)
        return found


def load_access(path: Path | None) -> Access:
    """The users and tokens of the access file at `path` (None: no access control)."""
    if path is None:
        return Access()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AccessError(f"cannot read the access file {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise AccessError(f"the access file {path} is not valid TOML: {error}") from None
    unknown = set(document) - {"users", "tokens"}
    if unknown:
        raise AccessError(f"{path}: unknown section {sorted(unknown)[0]!r}; expected users, tokens")
    users = _credentials(path, document.get("users", {}), "users", "password", is_password_hash)
    tokens = _credentials(path, document.get("tokens", {}), "tokens", "sha256", is_token_hash)
    return Access(users, tokens)


def _credentials(path: Path, table: object, section: str, key: str, valid) -> dict:
    if not isinstance(table, dict):
        raise AccessError(f"{path}: [{section}] must be a table of names")
    helper = "user NAME" if section == "users" else "token NAME"
    credentials = {}
    for name, entry in table.items():
        where = f"{path}: [{section}.{name}]"
        if not isinstance(entry, dict) or not {"role", key} <= set(entry) <= {"role", key, "bases"}:
            raise AccessError(f"{where} must have the keys role and {key}, and may have bases")
        try:
            role = Role[str(entry["role"]).upper()]
        except KeyError:
            raise AccessError(f"{where}: role must be reader or editor") from None
        if not isinstance(entry[key], str) or not valid(entry[key]):
            raise AccessError(
                f"{where}: {key} is not a hash made by `python -m web.access {helper}` "
                "(plain passwords and tokens are never stored)"
            )
        credentials[name] = _Credential(role, entry[key], _bases(where, entry.get("bases")))
    return credentials


def _bases(where: str, bases: object) -> frozenset[str] | None:
    """The knowledge bases an entry lists, each a name a base may have; None without a list."""
    if bases is None:
        return None
    if not isinstance(bases, list) or not all(isinstance(name, str) for name in bases):
        raise AccessError(f'{where}: bases must be a list of knowledge base names, e.g. ["hr"]')
    try:
        _check_base_names(bases)
    except BadBaseName as error:
        raise AccessError(f"{where}: {error}") from None
    return frozenset(bases)


def _check_base_names(names: list[str]) -> None:
    """Raise BadBaseName for the first of `names` no knowledge base may have (the default
    base's name is one a base has)."""
    for name in names:
        if name != DEFAULT:
            check_name(name)


def check_host(host: str, access: Access, *, behind_proxy: bool = False) -> None:
    """Refuse to serve beyond this machine when nobody has to log in.

    Behind a reverse proxy (`behind_proxy`: RETRIEVER_TRUSTED_PROXIES is set) the app is
    reachable from wherever the proxy is, even on a loopback address.
    """
    if access.configured or (is_loopback(host) and not behind_proxy):
        return
    where = (
        "RETRIEVER_TRUSTED_PROXIES is set, so a proxy brings requests from other machines"
        if is_loopback(host)
        else f"RETRIEVER_HOST={host} is not a loopback address"
    )
    raise AccessError(
        f"{where}, and no users or API tokens are configured: anyone who reaches the port "
        "could replace every document. Either serve on 127.0.0.1 without a proxy, or "
        "configure access first:\n"
        "  python -m web.access user alice --role editor >> access.toml\n"
        "  python -m web.access token wiki-bot --role reader >> access.toml\n"
        "  RETRIEVER_ACCESS_FILE=access.toml python app.py\n"
        "(docs/SECURITY.md explains roles, tokens and serving behind a proxy with TLS)"
    )


# ------------------------------------------------------------------ the helper command


def _entry(
    section: str, name: str, role: str, key: str, value: str, bases: list[str] | None
) -> str:
    # json.dumps quotes like a TOML basic string (and a list of them like a TOML array), so
    # any name is a valid key.
    entry = f"[{section}.{json.dumps(name, ensure_ascii=False)}]\nrole = {json.dumps(role)}\n"
    entry += f"{key} = {json.dumps(value)}\n"
    if bases is not None:
        entry += f"bases = {json.dumps(bases, ensure_ascii=False)}\n"
    return entry


def _read_password() -> str:
    if not sys.stdin.isatty():  # piped in, for scripts: the first line
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("password: ")
    if password != getpass.getpass("again: "):
        raise SystemExit("the two passwords differ")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m web.access",
        description="Print an access-file entry (TOML) to append to RETRIEVER_ACCESS_FILE.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    user = commands.add_parser("user", help="a user who logs in on the page (asks a password)")
    token = commands.add_parser("token", help="a new API token (printed once, on stderr)")
    for command, default in ((user, "reader"), (token, "reader")):
        command.add_argument("name")
        command.add_argument("--role", choices=["reader", "editor"], default=default)
        command.add_argument(
            "--base",
            action="append",
            dest="bases",
            metavar="NAME",
            help="keep it to this knowledge base (repeat for several; all bases without it)",
        )
    args = parser.parse_args(argv)
    try:
        _check_base_names(args.bases or [])
    except BadBaseName as error:
        raise SystemExit(str(error)) from None
    if args.command == "user":
        password = _read_password()
        if len(password) < 8:
            raise SystemExit("use a password of at least 8 characters")
        print(
            _entry("users", args.name, args.role, "password", hash_password(password), args.bases)
        )
    else:
        secret = new_token()
        print(
            f"API token for {args.name}, shown once (send it as Authorization: Bearer …):\n"
            f"{secret}",
            file=sys.stderr,
        )
        print(_entry("tokens", args.name, args.role, "sha256", hash_token(secret), args.bases))
    return 0


def page_user(gradio_app: Any, cookies: Mapping[str, str]) -> str | None:
    """The user logged in to the page, found from a request's cookies as Gradio's own routes
    find them (gradio.routes, get_current_user): for middleware, which runs before Gradio."""
    cookie_id = gradio_app.cookie_id
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return gradio_app.tokens.get(token) if token else None


if __name__ == "__main__":
    raise SystemExit(main())
