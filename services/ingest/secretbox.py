"""Device secrets at rest: AES-256-GCM with a key from settings, bound to the device id."""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SecretBox:
    def __init__(self, key_material: str) -> None:
        self._aead = AESGCM(hashlib.sha256(key_material.encode()).digest())

    def seal(self, device_id: str, secret: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), device_id.encode())

    def open(self, device_id: str, sealed: bytes) -> str:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], device_id.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("device secret cannot be decrypted with the configured key") from exc
