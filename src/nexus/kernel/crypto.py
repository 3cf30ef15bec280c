"""Encryption at rest for secrets the server must use again (webhook signing keys, …).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key derived by HKDF from
NEXUS_SECRET_KEY and a purpose label, so one configuration secret yields independent keys.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    def __init__(self, secret_key: str, purpose: str) -> None:
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"nexus-secret-box", info=purpose.encode()).derive(
            secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("the secret cannot be decrypted with this NEXUS_SECRET_KEY") from None
