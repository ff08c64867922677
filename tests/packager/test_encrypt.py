import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from packager.encrypt import decrypt_segment, encrypt_segment, new_iv


def test_whole_segment_cbc_with_pkcs7_padding():
    key, iv = bytes(range(16)), new_iv()
    plain = b"\x47" + bytes(187) * 3
    sealed = encrypt_segment(plain, key, iv)
    assert len(sealed) % 16 == 0 and len(sealed) > len(plain)
    # decrypt with the raw primitive, as a player would, and strip PKCS7 by hand
    raw = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = raw.update(sealed) + raw.finalize()
    assert padded[: -padded[-1]] == plain and set(padded[-padded[-1]:]) == {padded[-1]}
    assert decrypt_segment(sealed, key, iv) == plain


def test_ivs_are_fresh():
    assert len({new_iv() for _ in range(100)}) == 100


def test_wrong_sizes_are_refused():
    with pytest.raises(ValueError):
        encrypt_segment(b"x", b"short", new_iv())
