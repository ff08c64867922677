"""Tokens a host application mints with its own Ed25519 or P-256 key: verified with the public key by kid,
and a kid fixes the algorithm (no HS256-with-the-public-key confusion, no alg=none)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drm import PlaybackToken, TokenInvalid, TokenSigner
from tests.drm.fixtures import FakeClock, settings_for


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _der(private_key) -> bytes:
    return private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def host_keys():
    return {"host-ed": ed25519.Ed25519PrivateKey.generate(), "host-es": ec.generate_private_key(ec.SECP256R1())}


@pytest.fixture
def signer(clock, host_keys):
    return TokenSigner(settings_for(), clock=clock, public_keys={kid: _der(key) for kid, key in host_keys.items()})


def _playback_claims(clock, **overrides):
    now = int(clock())
    return {"sub": "viewer1", "ser": "series1", "sid": "sess1", "iat": now, "exp": now + 600, "aud": "playback",
            "jti": "j1", **overrides}


@pytest.mark.parametrize("kid, algorithm", [("host-ed", "EdDSA"), ("host-es", "ES256")])
def test_a_host_application_mints_playback_and_account_tokens_with_its_own_key(signer, clock, host_keys, kid,
                                                                               algorithm):
    token = jwt.encode(_playback_claims(clock), host_keys[kid], algorithm=algorithm, headers={"kid": kid})
    assert signer.verify(token) == PlaybackToken(viewer_id="viewer1", series_id="series1", session_id="sess1",
                                                 expires_at=int(clock()) + 600, issued_at=int(clock()),
                                                 session_started_at=int(clock()))   # no sst claim: its iat
    now = int(clock())
    account = jwt.encode({"sub": "viewer1", "role": "viewer", "iat": now, "exp": now + 60, "aud": "account",
                          "jti": "j2"}, host_keys[kid], algorithm=algorithm, headers={"kid": kid})
    assert signer.verify_account(account).subject == "viewer1"
    # the audiences still keep the kinds apart
    with pytest.raises(TokenInvalid):
        signer.verify_account(token)


def test_a_kid_fixes_the_algorithm(signer, clock, host_keys):
    ed_public = _der(host_keys["host-ed"])
    # HS256 keyed with the public key's bytes, under the public kid: the classic confusion attack
    # (built by hand: PyJWT refuses to use an asymmetric key as an HMAC secret)
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'host-ed'})}.{_b64(_playback_claims(clock))}"
    mac = hmac.new(ed_public, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(TokenInvalid):
        signer.verify(confused)
    swapped = jwt.encode(_playback_claims(clock), host_keys["host-es"], algorithm="ES256",
                         headers={"kid": "host-ed"})
    with pytest.raises(TokenInvalid):
        signer.verify(swapped)
    unsigned = jwt.encode(_playback_claims(clock), None, algorithm="none", headers={"kid": "host-ed"})
    with pytest.raises(TokenInvalid):
        signer.verify(unsigned)


def test_a_token_signed_by_another_private_key_is_refused(signer, clock):
    stranger = ed25519.Ed25519PrivateKey.generate()
    forged = jwt.encode(_playback_claims(clock), stranger, algorithm="EdDSA", headers={"kid": "host-ed"})
    with pytest.raises(TokenInvalid, match="signature does not verify"):
        signer.verify(forged)


def test_our_own_tokens_still_verify_and_kids_may_not_be_shared(signer, clock, host_keys):
    assert signer.verify(signer.mint("viewer1", "series1")).viewer_id == "viewer1"
    with pytest.raises(ValueError, match="both an HMAC key and a public key"):
        TokenSigner(settings_for(), clock=clock, public_keys={"a": _der(host_keys["host-ed"])})
    with pytest.raises(ValueError, match="neither Ed25519 nor P-256"):
        TokenSigner(settings_for(), clock=clock,
                    public_keys={"p384": _der(ec.generate_private_key(ec.SECP384R1()))})
