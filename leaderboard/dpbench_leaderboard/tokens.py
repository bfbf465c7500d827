"""API tokens: random, shown once, stored as a sha256, scoped, expiring, revocable, with a quota per owner.

A token reads ``dpb_<prefix>_<secret>``: the 12-hex-digit prefix is its public id (what ``revoke`` takes and the
store records with each submission); the 256-bit secret is never stored, only its sha256, compared in constant
time. Tokens are high-entropy random strings, so a fast hash is enough (no password-style key stretching).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from dpbench.errors import DpbenchError
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.models import Token

SCOPES = ("submit", "read", "admin")  # submit results; read one's own raw submissions; admin: read anyone's
TOKEN_RE = re.compile(r"dpb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


class AuthError(DpbenchError):
    """A request without a usable token (401) or with a token lacking the scope (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Identity:
    """Who sent a request: the token's prefix, owner, scopes and the owner's quota."""

    prefix: str
    owner: str
    scopes: frozenset[str]
    quota: int
    quota_period_s: int


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` is the full token, shown once and never again."""

    secret: str
    prefix: str
    owner: str
    scopes: tuple[str, ...]
    expires_at: float | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Database, owner: str, scopes: list[str], *, days: float | None = 90, quota: int = 10,
                 period_hours: float = 24, note: str = "", now: float | None = None) -> NewToken:
    """Create a token for ``owner`` with ``scopes``, expiring after ``days`` (None: never)."""
    if not OWNER_RE.fullmatch(owner):
        raise DpbenchError(f"owner {owner!r} must be 1-100 letters, digits, '.', '_', '@' or '-', starting with a "
                           "letter or digit")
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise DpbenchError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}; use {', '.join(SCOPES)}")
    if quota < 0 or period_hours <= 0 or (days is not None and days <= 0):
        raise DpbenchError("quota must be ≥ 0, the quota period and the lifetime > 0")
    now = time.time() if now is None else now
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = f"dpb_{prefix}_{secret}"
    expires = None if days is None else now + days * 86400
    ordered = tuple(s for s in SCOPES if s in scopes)
    with db.write() as session:
        session.add(Token(prefix=prefix, secret_sha256=_digest(secret), owner=owner, scopes=" ".join(ordered),
                          quota=quota, quota_period_s=int(period_hours * 3600), note=note[:200], created_at=now,
                          expires_at=expires, revoked_at=None))
    return NewToken(token, prefix, owner, ordered, expires)


def revoke_token(db: Database, prefix: str, now: float | None = None) -> bool:
    """Revoke the token with this prefix (or the full token); False when there is no such live token."""
    match = TOKEN_RE.fullmatch(prefix)
    prefix = match.group(1) if match else prefix
    with db.write() as session:
        token = session.scalar(select(Token).where(Token.prefix == prefix))
        if token is None or token.revoked_at is not None:
            return False
        token.revoked_at = time.time() if now is None else now
    return True


def list_tokens(db: Database) -> list[dict[str, object]]:
    """Every token's public facts (never a secret or its hash), oldest first."""
    with db.read() as session:
        rows = session.scalars(select(Token).order_by(Token.id)).all()
        return [{"prefix": t.prefix, "owner": t.owner, "scopes": t.scopes.split(), "quota": t.quota,
                 "quota_period_hours": t.quota_period_s / 3600, "created_at": t.created_at,
                 "expires_at": t.expires_at, "revoked_at": t.revoked_at, "note": t.note} for t in rows]


def authenticate(db: Database, header: str | None, scope: str, now: float | None = None) -> Identity:
    """The identity behind an ``Authorization: Bearer`` header holding ``scope``; AuthError otherwise."""
    if not header:
        raise AuthError(401, "missing token: send Authorization: Bearer dpb_...")
    kind, _, value = header.partition(" ")
    match = TOKEN_RE.fullmatch(value.strip()) if kind.lower() == "bearer" else None
    if match is None:
        raise AuthError(401, "invalid token: expected Authorization: Bearer dpb_<prefix>_<secret>")
    prefix, secret = match.groups()
    with db.read() as session:
        token = session.scalar(select(Token).where(Token.prefix == prefix))
    expected = token.secret_sha256 if token else _digest("no such token")
    if not hmac.compare_digest(expected, _digest(secret)) or token is None:
        raise AuthError(401, "invalid token")
    now = time.time() if now is None else now
    if token.revoked_at is not None:
        raise AuthError(401, f"token {prefix} was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthError(401, f"token {prefix} expired; ask the board's admin for a new one")
    scopes = frozenset(token.scopes.split())
    if scope not in scopes and "admin" not in scopes:
        raise AuthError(403, f"token {prefix} lacks the {scope!r} scope (it has: {', '.join(sorted(scopes))})")
    return Identity(prefix, token.owner, scopes, token.quota, token.quota_period_s)
