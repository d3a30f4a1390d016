"""Transcript-bearing columns of local.db, sealed with AES-256-GCM under a key derived from the
cache key.

What is sealed: a draft's transcript and note, every annotation body (outbox, history,
conflicts: transcript, intent, flags, note) and every stored lease (its `asr_hint` is a
hypothesis of what the stranger said). Ids, states, timestamps and counters stay in the clear:
the store's queries filter and join on them, and they say nothing of what anyone said.

Why field-level AES-GCM rather than SQLCipher: Debian 12 ships SQLCipher 3.4.1 (2017, the 3.x
KDF and page format SQLCipher itself calls legacy), and the 4.x bindings (`sqlcipher3`) are a
native build or a third-party wheel on every annotator's laptop and macOS, replacing the stdlib
`sqlite3` whose error codes the recovery logic (`recovery.py`) relies on. The columns worth
hiding are few and small; sealing them with `cryptography` (already how the clip cache is
encrypted, `cache.py`) costs microseconds per submit and no new dependency. What this leaves in
the clear — the table shapes, row counts, clip and lease ids, times — is written down in
SECURITY.md.

A sealed value is TEXT: `enc1:` + base64url(key id ‖ 96-bit nonce ‖ ciphertext+tag). The
associated data names the column and the row (`body:<idempotency key>`, `draft:<lease>:note`,
`lease:<lease id>`), so a value copied into another row or column fails authentication. The key
id lets a store hold values under a retired key while they are resealed (`keys.py` rotates an
exposed key).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from annotator.store.recovery import StoreError

PREFIX = "enc1:"
_KEY_ID_LEN = 8
_NONCE_LEN = 12
_AAD_PREFIX = b"annotator-local-db-v1:"


class SealedFieldError(StoreError):
    """A stored value cannot be opened: sealed under a key this machine no longer has, or
    tampered with."""


def _derive(cache_key: bytes) -> bytes:
    # A key of its own for the database, so a value can never be confused with a cache entry.
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"annotator local.db fields v1"
    ).derive(cache_key)


def key_id(cache_key: bytes) -> bytes:
    return hashlib.sha256(b"annotator-local-db-key-id:" + _derive(cache_key)).digest()[:_KEY_ID_LEN]


class FieldCipher:
    """Seals with the current key; opens values sealed under it or under any retired key."""

    def __init__(self, current: bytes, retired: Iterable[bytes] = ()) -> None:
        self.current_id = key_id(current)
        self._aeads: dict[bytes, AESGCM] = {}
        for key in (current, *retired):
            self._aeads.setdefault(key_id(key), AESGCM(_derive(key)))

    def seal(self, value: str, aad: str) -> str:
        nonce = secrets.token_bytes(_NONCE_LEN)
        sealed = self._aeads[self.current_id].encrypt(
            nonce, value.encode("utf-8"), _AAD_PREFIX + aad.encode()
        )
        return PREFIX + base64.urlsafe_b64encode(self.current_id + nonce + sealed).decode("ascii")

    def seal_opt(self, value: str | None, aad: str) -> str | None:
        return None if value is None else self.seal(value, aad)

    def open(self, stored: object, aad: str) -> str:
        """The plaintext of a stored value. A value written before sealing existed (no prefix)
        is returned as is: `LocalStore.open` reseals those on start."""
        text = str(stored)
        if not text.startswith(PREFIX):
            return text
        try:
            raw = base64.urlsafe_b64decode(text[len(PREFIX) :])
        except ValueError:
            raise SealedFieldError(f"a stored {aad.split(':')[0]} is damaged") from None
        kid, nonce, body = (
            raw[:_KEY_ID_LEN],
            raw[_KEY_ID_LEN : _KEY_ID_LEN + _NONCE_LEN],
            raw[_KEY_ID_LEN + _NONCE_LEN :],
        )
        aead = self._aeads.get(kid)
        if aead is None:
            raise SealedFieldError(
                f"a stored {aad.split(':')[0]} was encrypted under a cache key this machine no "
                "longer has (was the keyring or cache.key replaced?)"
            )
        try:
            return aead.decrypt(nonce, body, _AAD_PREFIX + aad.encode()).decode("utf-8")
        except InvalidTag:
            raise SealedFieldError(
                f"a stored {aad.split(':')[0]} failed authentication (tampered with or moved "
                "between rows)"
            ) from None

    def open_opt(self, stored: object | None, aad: str) -> str | None:
        return None if stored is None else self.open(stored, aad)

    def is_current(self, stored: object | None) -> bool:
        """Whether a stored value is sealed under the current key (None counts as fine)."""
        if stored is None:
            return True
        text = str(stored)
        if not text.startswith(PREFIX):
            return False
        try:
            raw = base64.urlsafe_b64decode(text[len(PREFIX) : len(PREFIX) + 12])
        except ValueError:
            return False
        return raw[:_KEY_ID_LEN] == self.current_id


def body_aad(key: str) -> str:
    return f"body:{key}"


def lease_aad(lease_id: str) -> str:
    return f"lease:{lease_id}"


def draft_aad(lease_id: str, column: str) -> str:
    return f"draft:{lease_id}:{column}"
