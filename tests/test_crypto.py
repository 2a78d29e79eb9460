"""AES-256-CBC payloads as KIS encrypts them (key/iv as UTF-8, PKCS#7, base64)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.kis.crypto import PayloadCryptoError, decrypt_payload, encrypt_payload

KEY = "abcdefghijklmnopqrstuvwxyz012345"
IV = "ABCDEFGHIJKLMNOP"
RECORD = (
    "005930^092237^1413444^109159646900^1189408^91931710200^-224036^-17227936700"
    "^65033^15475^-49558"
)
# Computed independently with: printf RECORD | openssl enc -aes-256-cbc -K <hex KEY> -iv <hex IV>
# -base64 -A
RECORD_CIPHERTEXT = (
    "+zeHEfTfNetpLQA4lVteBbLnexPNRagr/QUrtS75AF9cFXs1Or+iTUUr8Vi7+MJqoLGTtJjVwg74+H1Cf1v5VENn7N7u"
    "aLnbtmyoiIyPnVhAIhTPb2WNMbf6gLezUMux"
)
EMPTY_CIPHERTEXT = "sVPlKZ1xWGeIetGd6RbvHA=="  # a whole block of PKCS#7 padding

keys = st.text(string.ascii_letters + string.digits, min_size=32, max_size=32)
ivs = st.text(string.ascii_letters + string.digits, min_size=16, max_size=16)


def test_known_vector_matches_openssl() -> None:
    assert encrypt_payload(RECORD, KEY, IV) == RECORD_CIPHERTEXT
    assert decrypt_payload(RECORD_CIPHERTEXT, KEY, IV) == RECORD
    assert encrypt_payload("", KEY, IV) == EMPTY_CIPHERTEXT
    assert decrypt_payload(EMPTY_CIPHERTEXT, KEY, IV) == ""


@given(text=st.text(), key=keys, iv=ivs)
def test_round_trip(text: str, key: str, iv: str) -> None:
    data = encrypt_payload(text, key, iv)
    assert decrypt_payload(data, key, iv) == text


@pytest.mark.parametrize(
    ("data", "key", "iv", "match"),
    [
        ("not base64!", KEY, IV, "not base64"),
        ("QUJD", KEY, IV, "multiple of 16"),  # 3 bytes
        ("", KEY, IV, "multiple of 16"),
        (RECORD_CIPHERTEXT, KEY[:-1], IV, "32 bytes"),
        (RECORD_CIPHERTEXT, KEY, IV + "x", "16 bytes"),
    ],
)
def test_bad_input_is_a_clear_error(data: str, key: str, iv: str, match: str) -> None:
    with pytest.raises(PayloadCryptoError, match=match):
        decrypt_payload(data, key, iv)


def test_wrong_key_is_an_error_not_garbage() -> None:
    with pytest.raises(PayloadCryptoError, match="cannot decrypt"):
        decrypt_payload(RECORD_CIPHERTEXT, "0" * 32, IV)
