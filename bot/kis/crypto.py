"""AES-256-CBC payloads of encrypted KIS data frames (flag 1): base64, PKCS#7 padding.

The key (32 characters) and IV (16 characters) come from the subscription's acknowledgement
(``body.output.key`` / ``body.output.iv``) and are used as their UTF-8 bytes (KIS protocol §4).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

_KEY_BYTES = 32
_BLOCK_BITS = 128


class PayloadCryptoError(ValueError):
    """A payload that cannot be decrypted (bad base64, key, IV or padding)."""


def _cipher(key: str, iv: str) -> Cipher[modes.CBC]:
    key_bytes, iv_bytes = key.encode("utf-8"), iv.encode("utf-8")
    if len(key_bytes) != _KEY_BYTES:
        raise PayloadCryptoError(f"AES-256 key must be {_KEY_BYTES} bytes, got {len(key_bytes)}")
    if len(iv_bytes) != _BLOCK_BITS // 8:
        raise PayloadCryptoError(f"IV must be {_BLOCK_BITS // 8} bytes, got {len(iv_bytes)}")
    return Cipher(algorithms.AES(key_bytes), modes.CBC(iv_bytes))


def encrypt_payload(text: str, key: str, iv: str) -> str:
    """Encrypt ``text`` (UTF-8) as KIS does: AES-256-CBC, PKCS#7, base64."""
    padder = PKCS7(_BLOCK_BITS).padder()
    padded = padder.update(text.encode("utf-8")) + padder.finalize()
    encryptor = _cipher(key, iv).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decrypt_payload(data: str, key: str, iv: str) -> str:
    """Decrypt a base64 payload of an encrypted frame. Raises PayloadCryptoError."""
    cipher = _cipher(key, iv)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadCryptoError(f"payload is not base64: {exc}") from None
    if not raw or len(raw) % (_BLOCK_BITS // 8):
        raise PayloadCryptoError(f"ciphertext length {len(raw)} is not a multiple of 16")
    decryptor = cipher.decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    unpadder = PKCS7(_BLOCK_BITS).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except ValueError as exc:  # bad padding or not UTF-8: wrong key/IV or corrupt data
        raise PayloadCryptoError(f"cannot decrypt payload: {exc}") from None
