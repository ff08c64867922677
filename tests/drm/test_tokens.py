import base64
import json
import pickle
import re

import jwt
import pytest

from drm import InvalidId, PlaybackToken, TokenExpired, TokenInvalid, TokenSigner, WrongSeries
from drm.access.tokens import DEFAULT_ACCOUNT_TOKEN_TTL_S, MAX_ACCOUNT_TOKEN_TTL_S
from drm.errors import InvalidField
from drm.keystore import DEFAULT_PLAYBACK_TOKEN_TTL_S
from tests.drm.fixtures import SIGNING_A, SIGNING_B, FakeClock, settings_for


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def signer(clock):
    return TokenSigner(settings_for(token_ttl_s=600), clock=clock)


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_round_trip(signer, clock):
    token = signer.mint("viewer1", "series1", session_id="sess1")
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # URL-safe as is
    assert signer.verify(token) == PlaybackToken(
        viewer_id="viewer1", series_id="series1", session_id="sess1",
        expires_at=int(clock.now) + 600, issued_at=int(clock.now), session_started_at=int(clock.now),
    )
    claims = _claims(token)
    assert claims["aud"] == "playback" and claims["iat"] == claims["sst"] == int(clock.now)
    # a refresh's token names the session's start; a start in the future is taken as now
    clock.advance(90)
    assert signer.verify(signer.mint("viewer1", "series1", session_id="sess1",
                                     session_started_at=int(clock.now) - 90)).session_started_at == int(clock.now) - 90
    assert signer.verify(signer.mint("viewer1", "series1", session_started_at=int(clock.now) + 999)
                         ).session_started_at == int(clock.now)
    assert jwt.get_unverified_header(token)["kid"] == "a"


def test_defaults_give_random_session_and_jti(signer):
    first, second = signer.mint("v", "s"), signer.mint("v", "s")
    assert signer.verify(first).session_id != signer.verify(second).session_id
    assert _claims(first)["jti"] != _claims(second)["jti"]


def test_explicit_ttl(signer, clock):
    token = signer.mint("v", "s", ttl_s=5)
    assert signer.verify(token).expires_at == int(clock.now) + 5


def test_mint_validates_its_arguments(signer):
    for bad in ("../x", "", "a" * 65, "a/b"):
        with pytest.raises(InvalidId):
            signer.mint(bad, "s")
        with pytest.raises(InvalidId):
            signer.mint("v", bad)
        with pytest.raises(InvalidId):
            signer.mint("v", "s", session_id=bad)
    with pytest.raises(InvalidField) as caught:
        signer.mint("v", "s", ttl_s=0)
    assert caught.value.field == "ttl_s"


@pytest.mark.parametrize("subject, role, ttl_s, field", [
    ("../c1", "creator", None, "subject"),
    (7, "creator", None, "subject"),
    ("c1", "operator", None, "role"),
    ("c1", ["creator"], None, "role"),
    ("c1", "viewer", 0, "ttl_s"),
    ("c1", "viewer", "60", "ttl_s"),
    ("c1", "viewer", True, "ttl_s"),
    ("c1", "viewer", MAX_ACCOUNT_TOKEN_TTL_S + 1, "ttl_s"),
])
def test_mint_account_names_the_bad_field(signer, subject, role, ttl_s, field):
    with pytest.raises(InvalidField) as caught:
        signer.mint_account(subject, role, ttl_s=ttl_s)
    assert (caught.value.code, caught.value.field) == ("invalid_field", field)


def test_mint_account_accepts_the_longest_lifetime(signer, clock):
    token = signer.mint_account("c1", "creator", ttl_s=MAX_ACCOUNT_TOKEN_TTL_S)
    assert signer.verify_account(token).expires_at == int(clock.now) + MAX_ACCOUNT_TOKEN_TTL_S


def test_an_account_token_without_a_ttl_lasts_its_own_default_whatever_playback_tokens_last(clock):
    for playback_ttl_s in (60, MAX_ACCOUNT_TOKEN_TTL_S * 2):
        signer = TokenSigner(settings_for(token_ttl_s=playback_ttl_s), clock=clock)
        account = signer.verify_account(signer.mint_account("c1", "creator"))
        assert (account.issued_at, account.expires_at) == (int(clock.now), int(clock.now) + DEFAULT_ACCOUNT_TOKEN_TTL_S)


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_flipped_signature_char_is_invalid(signer):
    header, payload, signature = _segments(signer.mint("v", "s"))
    # Middle character: the last one of a 43-char segment carries 2 unused bits.
    tampered = ".".join([header, payload, _flip(signature, len(signature) // 2)])
    with pytest.raises(TokenInvalid) as caught:
        signer.verify(tampered)
    assert type(caught.value) is TokenInvalid and caught.value.code == "token_invalid"


def test_flipped_payload_char_is_invalid(signer):
    header, payload, signature = _segments(signer.mint("v", "s"))
    with pytest.raises(TokenInvalid):
        signer.verify(".".join([header, _flip(payload, len(payload) // 2), signature]))


def test_edited_claims_with_old_signature_are_invalid(signer):
    token = signer.mint("v", "s")
    header, _, signature = _segments(token)
    claims = _claims(token) | {"ser": "other_series"}
    with pytest.raises(TokenInvalid, match="signature"):
        signer.verify(".".join([header, _b64(claims), signature]))


def test_expired_by_injected_clock(signer, clock):
    token = signer.mint("v", "s", ttl_s=60)
    clock.advance(59)
    assert signer.verify(token).viewer_id == "v"
    clock.advance(1)  # exactly exp: no leeway
    with pytest.raises(TokenExpired) as caught:
        signer.verify(token)
    assert caught.value.code == "token_expired"
    assert isinstance(caught.value, TokenInvalid)


def test_clock_in_the_past_or_future_of_wall_time(clock):
    for now in (1_000_000_000.0, 4_000_000_000.0):
        clock.now = now
        signer = TokenSigner(settings_for(), clock=clock)
        assert signer.verify(signer.mint("v", "s")).expires_at == int(now) + DEFAULT_PLAYBACK_TOKEN_TTL_S


def test_unknown_kid_is_invalid(signer, clock):
    stranger = TokenSigner(
        settings_for(token_signing_keys={"zz": SIGNING_A}, token_signing_kid="zz"), clock=clock
    )
    with pytest.raises(TokenInvalid, match="key id"):
        signer.verify(stranger.mint("v", "s"))
    no_kid = jwt.encode({"sub": "v"}, SIGNING_A, algorithm="HS256")
    with pytest.raises(TokenInvalid, match="key id"):
        signer.verify(no_kid)


def test_same_kid_other_secret_is_invalid(signer, clock):
    forger = TokenSigner(settings_for(token_signing_keys={"a": b"f" * 32}), clock=clock)
    with pytest.raises(TokenInvalid, match="signature"):
        signer.verify(forger.mint("v", "s"))


def test_signing_key_rotation(clock):
    old = TokenSigner(settings_for(), clock=clock)
    token_a = old.mint("v", "s")
    rotated = settings_for(
        token_signing_keys={"a": SIGNING_A, "b": SIGNING_B}, token_signing_kid="b"
    )
    current = TokenSigner(rotated, clock=clock)
    token_b = current.mint("v", "s")
    assert jwt.get_unverified_header(token_b)["kid"] == "b"
    assert current.verify(token_a).viewer_id == "v"
    assert current.verify(token_b).viewer_id == "v"
    retired = TokenSigner(
        settings_for(token_signing_keys={"b": SIGNING_B}, token_signing_kid="b"), clock=clock
    )
    with pytest.raises(TokenInvalid):
        retired.verify(token_a)
    assert retired.verify(token_b).viewer_id == "v"


@pytest.mark.parametrize(
    "garbage",
    [None, "", "   ", "garbage", "a.b.c", "..", "x" * 10_000, 42, b"bytes.not.str",
     "eyJhbGciOiJIUzI1NiJ9.e30.sig"],
)
def test_garbage_is_invalid(signer, garbage):
    with pytest.raises(TokenInvalid) as caught:
        signer.verify(garbage)
    assert type(caught.value) is TokenInvalid


@pytest.mark.parametrize("missing", [None, "", 42])
def test_a_token_not_sent_says_what_to_do(signer, missing):
    with pytest.raises(TokenInvalid, match=r"^no playback token was sent; mint one for the viewer and series$"):
        signer.verify(missing)
    with pytest.raises(TokenInvalid, match=r"^no account token was sent$"):
        signer.verify_account(missing)


def test_alg_none_and_other_algorithms_are_refused(signer):
    claims = _claims(signer.mint("v", "s"))
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "a"})
    hs512 = jwt.encode(claims, SIGNING_A * 2, algorithm="HS512", headers={"kid": "a"})
    for token in (unsigned, hs512):
        with pytest.raises(TokenInvalid):
            signer.verify(token)


def _signed(claims: dict) -> str:
    return jwt.encode(claims, SIGNING_A, algorithm="HS256", headers={"kid": "a"})


def test_missing_claims_wrong_audience_and_bad_claims_are_invalid(signer):
    claims = _claims(signer.mint("v", "s"))
    for name in ("sub", "ser", "sid", "exp", "aud", "jti", "iat"):
        with pytest.raises(TokenInvalid):
            signer.verify(_signed({k: v for k, v in claims.items() if k != name}))
    with pytest.raises(TokenInvalid, match="audience"):
        signer.verify(_signed(claims | {"aud": "admin"}))
    for bad in ({"ser": "../x"}, {"sub": 5}, {"exp": "soon"}, {"exp": 1.5e12}):
        with pytest.raises(TokenInvalid):
            signer.verify(_signed(claims | bad))


def test_error_messages_do_not_contain_the_token(signer, clock):
    token = signer.mint("v", "s", ttl_s=1)
    header, payload, signature = _segments(token)
    clock.advance(5)
    for candidate in (token, ".".join([header, payload, _flip(signature, 10)])):
        with pytest.raises(TokenInvalid) as caught:
            signer.verify(candidate)
        assert signature[:10] not in str(caught.value) and payload not in str(caught.value)


def test_wrong_series_error_pickles():
    error = WrongSeries("s1", "s2")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.token_series_id, copy.wanted_series_id) == ("s1", "s2")
    assert copy.code == "token_wrong_series"
    assert str(copy) == str(error) and "s1" in str(copy) and "s2" in str(copy)


def test_a_refresh_may_verify_a_token_within_its_grace_past_expiry_and_not_after(signer, clock):
    token = signer.mint("v", "s", ttl_s=60, session_id="sess1")
    clock.now += 60
    with pytest.raises(TokenExpired):
        signer.verify(token)
    assert signer.verify(token, expired_for_s=30).session_id == "sess1"
    clock.now += 30
    with pytest.raises(TokenExpired):
        signer.verify(token, expired_for_s=30)
