"""Playback tokens: short-lived HS256 JWTs naming a viewer, a series and a session.

Account tokens (audience "account") name a creator or viewer and their role for the catalog
API. The audiences keep the two apart: a playback token opens no account, and the reverse.

A host application may mint either kind itself, without holding our secret, by signing with its own
Ed25519 (EdDSA) or P-256 (ES256) private key: TokenSigner verifies those with the public keys it is
given, by kid. A kid names one key and so one algorithm: an HMAC kid is verified as HS256 only, a
public-key kid as EdDSA or ES256 only, so a token cannot choose how it is checked.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_der_public_key

from drm.errors import InvalidField, InvalidId, TokenExpired, TokenInvalid
from drm.ids import check_id, field_id
from drm.keystore import DrmSettings

AUDIENCE = "playback"
ACCOUNT_AUDIENCE = "account"
ROLES = ("creator", "viewer")
MAX_ACCOUNT_TOKEN_TTL_S = 30 * 24 * 3600  # an account token stands in for a sign-in: a month at most
DEFAULT_ACCOUNT_TOKEN_TTL_S = 6 * 3600
_ACCOUNT_CLAIMS = ["sub", "role", "iat", "exp", "aud", "jti"]
_ALGORITHM = "HS256"
_MAX_TOKEN_CHARS = 4096
_REQUIRED_CLAIMS = ["sub", "ser", "sid", "iat", "exp", "aud", "jti"]
# Expiry is checked against the injected clock below, not PyJWT's wall clock.
_DECODE_OPTIONS = {             # "require" is added per audience by _decode()
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackToken:
    viewer_id: str
    series_id: str
    session_id: str
    expires_at: int  # unix seconds; the token is refused from this instant on
    issued_at: int = 0  # unix seconds (`iat`): an account revocation refuses tokens issued up to its instant
    session_started_at: int = 0  # unix seconds (`sst`): the session's first token's iat, kept by refreshes


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountToken:
    subject: str  # the creator or viewer id
    role: str  # "creator" | "viewer"
    expires_at: int
    issued_at: int = 0  # unix seconds (`iat`)


class TokenSigner:
    """Mints and verifies playback tokens; signs with ``settings.token_signing_kid``.

    Verification accepts any kid still in ``settings.token_signing_keys``, so a
    signing key can be rotated without logging every viewer out.
    """

    def __init__(self, settings: DrmSettings, clock: Callable[[], float] = time.time, *,
                 public_keys: Mapping[str, bytes] | None = None) -> None:
        """`public_keys`: kid -> DER SubjectPublicKeyInfo of an Ed25519 or P-256 key whose holder may
        mint tokens we accept. Raises ValueError for another key type or a kid that is also an HMAC kid."""
        self._settings = settings
        self._clock = clock
        self._public_keys = {kid: _public_key(kid, der) for kid, der in (public_keys or {}).items()}
        shared = set(self._public_keys) & set(settings.token_signing_keys)
        if shared:
            raise ValueError(f"key ids {sorted(shared)} name both an HMAC key and a public key")

    def mint(
        self,
        viewer_id: str,
        series_id: str,
        *,
        ttl_s: int | None = None,
        session_id: str | None = None,
        session_started_at: int | None = None,
    ) -> str:
        """Return a signed, URL-safe token valid for ``ttl_s`` seconds (default: settings). A refresh passes
        the session's id and start (its first token's iat); a new session starts now.

        Raises InvalidId for a bad viewer/series/session id, InvalidField if ``ttl_s`` < 1.
        """
        check_id("viewer_id", viewer_id)
        check_id("series_id", series_id)
        if session_id is None:
            session_id = "s_" + secrets.token_urlsafe(16)
        check_id("session_id", session_id)
        ttl_s = self._ttl_s(ttl_s)
        issued_at = int(self._clock())
        claims = {
            "sub": viewer_id,
            "ser": series_id,
            "sid": session_id,
            "iat": issued_at,
            "sst": issued_at if session_started_at is None else min(session_started_at, issued_at),
            "exp": issued_at + ttl_s,
            "aud": AUDIENCE,
            "jti": secrets.token_urlsafe(12),
        }
        kid = self._settings.token_signing_kid
        secret = self._settings.token_signing_keys[kid]
        return jwt.encode(claims, secret, algorithm=_ALGORITHM, headers={"kid": kid})

    def mint_account(self, subject: str, role: str, *, ttl_s: int | None = None) -> str:
        """A signed account token for ``subject`` acting as ``role`` (creator or viewer).

        Raises InvalidField naming the field for a bad subject, an unknown role, or a ttl_s outside
        1..MAX_ACCOUNT_TOKEN_TTL_S: the operator API and the CLI pass their input straight through.
        """
        field_id("subject", subject)
        if role not in ROLES:
            raise InvalidField("role", f"expected one of {', '.join(ROLES)}")
        ttl_s = self._ttl_s(DEFAULT_ACCOUNT_TOKEN_TTL_S if ttl_s is None else ttl_s, maximum=MAX_ACCOUNT_TOKEN_TTL_S)
        issued_at = int(self._clock())
        claims = {"sub": subject, "role": role, "iat": issued_at, "exp": issued_at + ttl_s,
                  "aud": ACCOUNT_AUDIENCE, "jti": secrets.token_urlsafe(12)}
        kid = self._settings.token_signing_kid
        return jwt.encode(claims, self._settings.token_signing_keys[kid], algorithm=_ALGORITHM, headers={"kid": kid})

    def _ttl_s(self, ttl_s: object, maximum: int | None = None) -> int:
        if ttl_s is None:
            ttl_s = self._settings.token_ttl_s
        if type(ttl_s) is not int or ttl_s < 1 or (maximum is not None and ttl_s > maximum):
            bounds = "a positive integer" if maximum is None else f"an integer in 1..{maximum}"
            raise InvalidField("ttl_s", f"expected {bounds} of seconds")
        return ttl_s

    def verify_account(self, token: str | None) -> AccountToken:
        """Check an account token like verify() checks a playback token; raises TokenInvalid/TokenExpired."""
        if not isinstance(token, str) or not token:
            raise TokenInvalid("no account token was sent")
        claims = self._decode(token, ACCOUNT_AUDIENCE, _ACCOUNT_CLAIMS, "account token")
        expires_at, role, issued_at = claims["exp"], claims["role"], claims["iat"]
        if type(expires_at) is not int or type(issued_at) is not int or role not in ROLES:
            raise TokenInvalid("account token carries a malformed exp, iat or role claim")
        try:
            subject = check_id("subject", claims["sub"])  # type: ignore[arg-type]
        except InvalidId as exc:
            raise TokenInvalid(f"account token carries a malformed claim: {exc}") from exc
        if self._clock() >= expires_at:
            raise TokenExpired(f"account token expired at {expires_at} (unix s); sign in again")
        return AccountToken(subject=subject, role=role, expires_at=expires_at,  # type: ignore[arg-type]
                            issued_at=issued_at)

    def _decode(self, token: str, audience: str, required: list[str], name: str) -> dict[str, object]:
        """The claims of a token signed by a known kid for `audience`; TokenInvalid naming `name` otherwise.

        A token that was not sent at all is the caller's to refuse: what to do about it differs.
        """
        if len(token) > _MAX_TOKEN_CHARS:
            raise TokenInvalid(f"{name} is longer than {_MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"{name} is not a well-formed JWT") from exc
        kid = header.get("kid")
        secret = self._settings.token_signing_keys.get(kid) if isinstance(kid, str) else None
        algorithm = _ALGORITHM
        if secret is None and isinstance(kid, str) and kid in self._public_keys:
            secret, algorithm = self._public_keys[kid]
        if secret is None:
            raise TokenInvalid(f"{name} is signed with an unknown or retired key id")
        try:
            return jwt.decode(token, secret, algorithms=[algorithm], audience=audience,
                              options={**_DECODE_OPTIONS, "require": required})
        except jwt.InvalidSignatureError as exc:
            raise TokenInvalid(f"{name} signature does not verify") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenInvalid(f"{name} is not for audience {audience!r}") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"{name} rejected: {exc}") from exc

    def verify(self, token: str | None, *, expired_for_s: int = 0) -> PlaybackToken:
        """Check signature, audience, claims and expiry; return what the token grants.

        Raises TokenExpired once the injected clock reaches ``exp`` + ``expired_for_s`` (no leeway by
        default: a refresh passes its grace window), and TokenInvalid for a missing, malformed, tampered
        or unknown-kid token. Messages never contain the token itself.
        """
        if not isinstance(token, str) or not token:
            raise TokenInvalid("no playback token was sent; mint one for the viewer and series")
        return self._grant(self._decode(token, AUDIENCE, _REQUIRED_CLAIMS, "playback token"), expired_for_s)

    def _grant(self, claims: dict[str, object], expired_for_s: int) -> PlaybackToken:
        expires_at, issued_at = claims["exp"], claims["iat"]
        started_at = claims.get("sst", issued_at)     # a host app's tokens may not carry it: the session starts then
        if type(expires_at) is not int or type(issued_at) is not int or type(started_at) is not int:
            raise TokenInvalid("playback token exp, iat or sst claim is not an integer")
        try:
            grant = PlaybackToken(
                viewer_id=check_id("viewer_id", claims["sub"]),  # type: ignore[arg-type]
                series_id=check_id("series_id", claims["ser"]),  # type: ignore[arg-type]
                session_id=check_id("session_id", claims["sid"]),  # type: ignore[arg-type]
                expires_at=expires_at,
                issued_at=issued_at,
                session_started_at=min(started_at, issued_at),
            )
        except InvalidId as exc:
            raise TokenInvalid(f"playback token carries a malformed claim: {exc}") from exc
        if self._clock() >= expires_at + expired_for_s:
            raise TokenExpired(f"playback token expired at {expires_at} (unix s); mint a new one")
        return grant


def _public_key(kid: str, der: bytes) -> tuple[object, str]:
    """(key, its one JWS algorithm) for a DER public key: EdDSA for Ed25519, ES256 for P-256."""
    key = load_der_public_key(der)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key, "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, "ES256"
    raise ValueError(f"public key {kid} is neither Ed25519 nor P-256")
