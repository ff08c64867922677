"""Who is calling: the operator (a shared secret) or a creator/viewer (a signed account token).

Every check of credentials (here, the ingest token in server/ingest/api.py, the metrics token) runs
through checked_credentials(): a client address that failed too often gets 429 with Retry-After
before its credentials are even looked at (server/edge/ratelimit.py AuthFailureLimiter).

Operators present ``Authorization: Bearer <SERIES_OPERATOR_TOKEN>``, compared in constant time.
Creators and viewers present account tokens: JWTs from the same TokenSigner as playback tokens
(kid-rotatable) but with audience "account" and a role claim; the operator API issues them, standing
in for the product's sign-in. A playback token is never accepted here, nor an account token for keys.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from drm.access.tokens import AccountToken
from drm.errors import InvalidId
from drm.ids import check_id
from server.edge.problems import status_for
from server.edge.ratelimit import AuthFailureLimiter
from server.edge.security import client_address
from server.services import Services

T = TypeVar("T")
AUTH_FAILURES = web.AppKey("auth_failures", AuthFailureLimiter)   # set by create_app
# (subject, issued_at, what) -> None, or raises TokenRevoked: the access room's revocations, in memory
# (server/access/revocations.py), set by access.install; an app without it refuses every account token
RevocationCheck = Callable[[str, int, str], None]
REVOCATION_CHECK = web.AppKey[RevocationCheck]("revocation_check")

OPERATOR_NAME_HEADER = "X-Operator"   # who acts, for the audit trail; defaults to "operator"


class AuthRequired(Exception):
    """No usable credentials (401)."""

    code = "auth_required"
    http_status = 401


class Forbidden(Exception):
    """Valid credentials that may not do this (403)."""

    code = "forbidden"
    http_status = 403


class NotConfigured(Exception):
    """An endpoint whose secret is not configured on this instance (503)."""

    code = "not_configured"
    http_status = 503


def bearer(request: web.Request) -> str | None:
    """The credentials of an `Authorization: Bearer …` header, or None."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def bearer_matches(request: web.Request, expected: str) -> bool:
    """Whether the request's bearer credentials are `expected`, compared in constant time."""
    given = bearer(request)
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


_PLAIN_TOKEN_QUERY = re.compile(r"token=([A-Za-z0-9_.\-]+)")    # nothing to decode: JWTs are URL-safe


def token_of(request: web.Request) -> str | None:
    """The playback token: in the query (Safari cannot add headers) or as a Bearer header."""
    plain = _PLAIN_TOKEN_QUERY.fullmatch(request.query_string)
    if plain:       # a player's key or playlist request: the query is just the token; no parsing needed
        return plain.group(1)
    token = request.query.get("token")
    if token:
        return token
    return bearer(request)


def checked_credentials(request: web.Request, check: Callable[[], T]) -> T:
    """`check()` (which raises a 401 error for bad credentials) under the per-address failure limit:
    AuthFailuresLimited (429, Retry-After) while the address has failed too often, and each 401 counted."""
    limiter = request.app.get(AUTH_FAILURES)
    if limiter is None:         # an app composed without the edge's limiter (a partial app in a test)
        return check()
    address = client_address(request, limiter.trusted_proxies)
    limiter.check(address)
    try:
        return check()
    except Exception as exc:
        if status_for(exc) == 401:
            limiter.failed(address)
        raise


def _refuse_throttled(request: web.Request) -> None:
    checked_credentials(request, lambda: None)


def require_operator(request: web.Request, services: Services) -> str:
    """The acting operator's audit name ("operator:<name>"), or AuthRequired / NotConfigured."""
    expected = services.settings.operator_token
    if expected is None:
        raise NotConfigured("the operator API is off: SERIES_OPERATOR_TOKEN is not set")

    def check() -> None:
        if not bearer_matches(request, expected.reveal()):
            raise AuthRequired("send the operator token as 'Authorization: Bearer <token>'")

    checked_credentials(request, check)
    name = request.headers.get(OPERATOR_NAME_HEADER, "operator")
    try:
        return "operator:" + check_id(OPERATOR_NAME_HEADER, name)
    except InvalidId:
        return "operator"


def is_operator(request: web.Request, services: Services) -> bool:
    """Whether the request carries the operator token (without failing when it does not: the caller
    then checks an account token, which counts a failure). A throttled address gets 429 here too, or
    this would answer its guesses."""
    expected = services.settings.operator_token
    if bearer(request) is not None:
        _refuse_throttled(request)
    return expected is not None and bearer_matches(request, expected.reveal())


def verified_account(request: web.Request, services: Services) -> AccountToken:
    """The request's account token (Bearer), verified and checked against revocations; no throttling here."""
    account = services.tokens.verify_account(bearer(request))
    request.app[REVOCATION_CHECK](account.subject, account.issued_at, "account token")
    return account


def require_account(request: web.Request, services: Services, role: str, subject: str | None = None) -> AccountToken:
    """The caller's verified account token with ``role`` (and ``subject``, when given).

    Raises TokenInvalid/TokenExpired/TokenRevoked (401) for a bad, expired or revoked token (`series tokens
    revoke`; within about a second everywhere), and Forbidden (403) for another role or person.
    """
    account = checked_credentials(request, lambda: verified_account(request, services))
    if account.role != role:
        raise Forbidden(f"this needs a {role} account; the token is for a {account.role}")
    if subject is not None and account.subject != subject:
        raise Forbidden(f"the token is for {role} {account.subject}, not {subject}")
    return account
