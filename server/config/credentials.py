"""Secrets from the environment, checked at start-up: bearer secrets long and random enough, token keys
that decode to usable keys, and every error naming the variable (never echoing the value).

Every bearer secret (SERIES_OPERATOR_TOKEN, SERIES_INGEST_TOKEN, SERIES_METRICS_TOKEN, the payment
system's SERIES_WEBHOOK_SECRET) has one minimum length and must look random: its characters'
Shannon entropy times its length must reach MIN_SECRET_BITS. That refuses `aaaaaaaaaaaaaaaaaaaaaaaa`
and `abcabcabc…`, which a length rule alone lets through. Each purpose has its own secret: the same
value for two of them is refused, so one leak does not open the others.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections import Counter
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_der_public_key

from drm.errors import InvalidId
from drm.ids import check_id
from drm.keystore import DEFAULT_PLAYBACK_TOKEN_TTL_S, DrmSettings
from server.config.environment import PREFIX, Environment, SettingsError, decode_b64

MIN_SECRET_CHARS = 24           # every bearer secret: 24 random URL-safe characters are ~144 bits
MIN_SECRET_BITS = 64.0          # estimated entropy: characters' Shannon entropy x length
MIN_TOKEN_KEY_BYTES = 32        # HS256 keys: RFC 7518 §3.2 wants at least the hash size
WEBHOOK_SECRET_PREFIX = "whsec_"   # Standard Webhooks' secret format: whsec_ + base64 of the key
MIN_WEBHOOK_KEY_BYTES = 24
GENERATE_HINT = "python -c 'import secrets;print(secrets.token_urlsafe(32))'"


def estimated_bits(secret: str) -> float:
    """Shannon entropy of the characters of `secret`, times its length, in bits: a cheap upper bound on
    how guessable it is that catches repeated and few-letter secrets."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    total = len(secret)
    per_char = -sum(n / total * math.log2(n / total) for n in counts.values())
    return per_char * total


def check_bearer_secret(name: str, value: str) -> str:
    """`value` if it is fit to be the bearer secret SERIES_`name`; SettingsError naming the variable otherwise."""
    if len(value) < MIN_SECRET_CHARS:
        raise SettingsError(f"{PREFIX}{name} is too short ({len(value)} characters); use at least "
                            f"{MIN_SECRET_CHARS} random characters, e.g. {GENERATE_HINT}")
    if estimated_bits(value) < MIN_SECRET_BITS:
        raise SettingsError(f"{PREFIX}{name} is too predictable (repeated or few distinct characters); use a "
                            f"random value, e.g. {GENERATE_HINT}")
    return value


def check_distinct(secrets: Mapping[str, str | None]) -> None:
    """SettingsError when two purposes share one secret (variable name -> value; None = unset)."""
    seen: dict[str, str] = {}
    for name, value in secrets.items():
        if not value:
            continue
        if value in seen:
            raise SettingsError(f"{PREFIX}{seen[value]} and {PREFIX}{name} are the same secret; give each "
                                "purpose its own, so that one leak does not expose the other")
        seen[value] = name


def parse_token_keys(name: str, raw: str) -> dict[str, bytes]:
    """SERIES_TOKEN_KEYS: 'kid:base64secret,kid2:base64secret', each secret at least 32 bytes."""
    keys = parse_kid_map(name, raw)
    for kid, key in keys.items():
        check_random_bytes(f"{name} entry {kid!r}", key, minimum=MIN_TOKEN_KEY_BYTES)
    return keys


def check_random_bytes(name: str, key: bytes, *, minimum: int) -> bytes:
    """A binary key of at least `minimum` bytes that does not look like a repeated pattern."""
    if len(key) < minimum or estimated_bits(key.decode("latin-1")) < MIN_SECRET_BITS:
        raise SettingsError(f"{PREFIX}{name} decodes to {len(key)} byte{'s' if len(key) != 1 else ''}"
                            f"{' of a predictable pattern' if len(key) >= minimum else ''}; give at least "
                            f"{minimum} random bytes in base64, e.g. "
                            "python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'")
    return key


def parse_kid_map(name: str, raw: str) -> dict[str, bytes]:
    """'kid:base64,kid2:base64' -> {kid: bytes}; SettingsError naming SERIES_`name` and the entry."""
    keys = {}
    for item in raw.split(","):
        kid, sep, value = item.strip().partition(":")
        if not sep or not kid:
            raise SettingsError(f"{PREFIX}{name} has an entry without 'kid:'; expected 'kid:base64,kid2:base64'")
        if not _is_kid(kid):
            raise SettingsError(f"{PREFIX}{name} has key id {kid[:40]!r}; use a letter or digit, then letters, "
                                "digits, '-' or '_' (64 characters at most)")
        if kid in keys:
            raise SettingsError(f"{PREFIX}{name} names key id {kid!r} twice")
        keys[kid] = decode_b64(value.strip(), f"{PREFIX}{name} entry {kid!r}")
    return keys


def check_signing_kid(name: str, kid: str, keys: Mapping[str, bytes], keys_name: str) -> str:
    """The kid that signs must be one of the keys."""
    if kid not in keys:
        raise SettingsError(f"{PREFIX}{name} is {kid[:40]!r}, which {PREFIX}{keys_name} does not define "
                            f"(it defines {', '.join(sorted(keys))}); name one of those")
    return kid


def parse_public_keys(name: str, raw: str, hmac_kids: Mapping[str, bytes]) -> dict[str, bytes]:
    """SERIES_TOKEN_PUBLIC_KEYS: 'kid:base64 DER SubjectPublicKeyInfo,…' of Ed25519 or ECDSA P-256 keys
    (the base64 lines of a PEM public key, joined). Their kids must differ from the HMAC kids: a kid
    names one key and so one algorithm (no algorithm confusion)."""
    keys = parse_kid_map(name, raw) if raw else {}
    for kid, der in keys.items():
        if kid in hmac_kids:
            raise SettingsError(f"{PREFIX}{name} entry {kid!r} reuses a key id of {PREFIX}TOKEN_KEYS; "
                                "give each key its own id")
        try:
            key = load_der_public_key(der)
        except (ValueError, TypeError):
            raise SettingsError(f"{PREFIX}{name} entry {kid!r} is not a DER public key in base64; export it with "
                                "openssl pkey -pubin -in KEY.pub.pem -outform DER | base64 -w0") from None
        is_p256 = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
        if not (isinstance(key, ed25519.Ed25519PublicKey) or is_p256):
            raise SettingsError(f"{PREFIX}{name} entry {kid!r} is neither an Ed25519 nor a P-256 (ES256) key")
    return keys


def check_webhook_secret(name: str, value: str) -> str:
    """A Standard Webhooks secret: 'whsec_' + base64 of at least 24 random bytes."""
    if not value.startswith(WEBHOOK_SECRET_PREFIX):
        raise SettingsError(f"{PREFIX}{name} must be a Standard Webhooks secret, {WEBHOOK_SECRET_PREFIX}<base64>; "
                            "generate one with python -c 'import os,base64;"
                            "print(\"whsec_\"+base64.b64encode(os.urandom(32)).decode())'")
    try:
        key = base64.b64decode(value[len(WEBHOOK_SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{PREFIX}{name} is not valid base64 after {WEBHOOK_SECRET_PREFIX}") from None
    check_random_bytes(name, key, minimum=MIN_WEBHOOK_KEY_BYTES)
    return value


def _is_kid(kid: str) -> bool:
    try:
        check_id("key id", kid)
    except InvalidId:
        return False
    return True


def read_drm_settings(env: Environment, generated: dict) -> DrmSettings:
    """Master key and token keys; every bad value named by its variable (DrmSettings' own checks speak of
    fields, so everything it would refuse is checked here first)."""
    master_key = env.base64_key("MASTER_KEY", generated.get("master_key"), size=32)
    check_random_bytes("MASTER_KEY", master_key, minimum=32)
    raw_keys = env.str("TOKEN_KEYS", "")
    if raw_keys:
        token_keys = parse_token_keys("TOKEN_KEYS", raw_keys)
    elif generated.get("token_keys"):
        token_keys = generated["token_keys"]
    else:
        raise SettingsError(f"{PREFIX}TOKEN_KEYS is not set; give 'kid:base64secret[,kid2:base64secret]', "
                            "each secret 32 random bytes or more")
    master_key_id = env.str("MASTER_KEY_ID", "mk1")
    old_master_keys = env.old_master_keys("OLD_MASTER_KEYS")
    for name, kid in [("MASTER_KEY_ID", master_key_id)] + [("OLD_MASTER_KEYS", kid) for kid in old_master_keys]:
        if not is_id(kid):
            raise SettingsError(f"{PREFIX}{name} has key id {kid[:40]!r}; use a letter or digit, then letters, "
                                "digits, '-' or '_'")
    for kid, key in old_master_keys.items():
        if len(key) != 32:
            raise SettingsError(f"{PREFIX}OLD_MASTER_KEYS entry {kid!r} decodes to {len(key)} bytes; expected 32")
    if master_key_id in old_master_keys:
        raise SettingsError(f"{PREFIX}MASTER_KEY_ID {master_key_id!r} is also in {PREFIX}OLD_MASTER_KEYS; "
                            "remove it from the old keys")
    ttl_s = env.int("TOKEN_TTL_S", DEFAULT_PLAYBACK_TOKEN_TTL_S)
    if ttl_s < 1:
        raise SettingsError(f"{PREFIX}TOKEN_TTL_S has value {ttl_s!r}; expected a positive number of seconds")
    kid = check_signing_kid("TOKEN_KID", env.str("TOKEN_KID", max(token_keys)), token_keys, "TOKEN_KEYS")
    try:
        return DrmSettings(master_key=master_key, master_key_id=master_key_id, old_master_keys=old_master_keys,
                           token_signing_keys=token_keys, token_signing_kid=kid, token_ttl_s=ttl_s)
    except ValueError as exc:   # a rule of drm's this module does not know yet: still name the variables
        raise SettingsError(f"{PREFIX}MASTER_KEY* / {PREFIX}TOKEN_*: {exc}") from None


def is_id(value: str) -> bool:
    try:
        check_id("id", value)
    except InvalidId:
        return False
    return True
