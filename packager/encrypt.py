"""encrypt_segment(): whole-segment AES-128-CBC with PKCS7 padding (RFC 8216 §4.3.2.4, §5.2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
IV_BYTES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentKey:
    key_id: str                          # opaque id; the key server resolves it
    key: bytes = field(repr=False)       # 16 bytes, never logged


class KeySchedule(Protocol):
    """Which key encrypts key period `period` (period = segment index // segments_per_key)."""

    def key_for(self, period: int) -> SegmentKey: ...


def new_iv() -> bytes:
    """A fresh random IV. Random per segment: players disagree on the implicit media-sequence IV."""
    return os.urandom(IV_BYTES)


def encrypt_segment(plaintext: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC/PKCS7 of a whole segment. Raises ValueError on a key or IV that is not 16 bytes."""
    if len(key) != KEY_BYTES or len(iv) != IV_BYTES:
        raise ValueError("AES-128 needs a 16-byte key and a 16-byte IV")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt_segment(ciphertext: bytes, key: bytes, iv: bytes) -> bytes:
    """Inverse of encrypt_segment, for self-checks and operator tooling."""
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def decrypt_prefix(ciphertext_prefix: bytes, key: bytes, iv: bytes) -> bytes:
    """Decrypt the first whole blocks of a segment, as a player does with an I-frame byte range.

    No padding is removed: the PKCS7 padding is only at the end of the whole segment.
    Raises ValueError if the length is not a multiple of 16.
    """
    if len(ciphertext_prefix) % IV_BYTES:
        raise ValueError(f"{len(ciphertext_prefix)} bytes is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext_prefix) + decryptor.finalize()
