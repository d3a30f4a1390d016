"""The encrypted clip cache: recordings of strangers, unreadable to anyone without the key.

Each entry is one file: magic, key id, a random 96-bit nonce, then AES-256-GCM ciphertext whose
associated data is the clip id, so an entry renamed to another clip fails authentication. Plaintext
exists only in memory. Writes are atomic (temp file, fsync, rename) so a crash never leaves half
an entry that would decrypt to garbage.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from annotator import paths
from annotator.store.keys import CacheKeyError, load_cache_key

__all__ = ["CacheKeyError", "ClipCache", "load_cache_key"]

log = logging.getLogger("annotator.store")

_MAGIC = b"ANC1"
_KEY_ID_LEN = 8
_NONCE_LEN = 12
_HEADER_LEN = len(_MAGIC) + _KEY_ID_LEN + _NONCE_LEN
_SUFFIX = ".clip"
_CLIP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def default_dir() -> Path:
    return paths.data_dir() / "cache"


def _aad(clip_id: str) -> bytes:
    return b"annotator-clip-cache-v1:" + clip_id.encode()


class CacheEntryDamaged(Exception):
    """A cached clip failed its check (tampered, truncated, another key); it has been deleted."""

    def __init__(self, clip_id: str, why: str) -> None:
        super().__init__(f"the offline copy of clip {clip_id} {why} and was deleted")
        self.clip_id = clip_id
        self.why = why


class ClipCache:
    def __init__(self, directory: Path, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError("the cache key must be 128, 192 or 256 bits")
        self.dir = paths.ensure_private_dir(directory)
        self._aead = AESGCM(key)
        # Tells "encrypted under another key" (keyring changed) apart from tampering in the log.
        self._key_id = hashlib.sha256(b"annotator-cache-key-id:" + key).digest()[:_KEY_ID_LEN]

    @classmethod
    def open_default(cls) -> ClipCache:
        key, _where = load_cache_key()
        return cls(default_dir(), key)

    def _path(self, clip_id: str) -> Path:
        # Clip ids come from the server: never let one name a path outside the cache.
        if not _CLIP_ID.match(clip_id):
            raise ValueError(f"not a clip id: {clip_id!r}")
        return self.dir / f"{clip_id}{_SUFFIX}"

    def put(self, clip_id: str, data: bytes) -> None:
        target = self._path(clip_id)
        nonce = secrets.token_bytes(_NONCE_LEN)
        blob = _MAGIC + self._key_id + nonce + self._aead.encrypt(nonce, data, _aad(clip_id))
        tmp = self.dir / f".{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def get(self, clip_id: str) -> bytes | None:
        """The plaintext, or None when absent or when it fails authentication (then it is deleted:
        a tampered or foreign entry can never become readable)."""
        try:
            return self.read(clip_id)
        except CacheEntryDamaged:
            return None

    def read(self, clip_id: str) -> bytes | None:
        """`get`, but an entry that fails its check raises CacheEntryDamaged (after deleting it),
        so the caller can say which clip's audio went and why."""
        path = self._path(clip_id)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        why = "truncated"
        if len(blob) > _HEADER_LEN and blob.startswith(_MAGIC):
            if blob[len(_MAGIC) : len(_MAGIC) + _KEY_ID_LEN] != self._key_id:
                why = "encrypted under another key"
            else:
                nonce = blob[len(_MAGIC) + _KEY_ID_LEN : _HEADER_LEN]
                try:
                    return self._aead.decrypt(nonce, blob[_HEADER_LEN:], _aad(clip_id))
                except InvalidTag:
                    why = "failed authentication"
        log.warning("cache entry %s %s; deleted", path.name, why)
        path.unlink(missing_ok=True)
        raise CacheEntryDamaged(clip_id, why)

    def __contains__(self, clip_id: object) -> bool:
        return isinstance(clip_id, str) and self._path(clip_id).exists()

    def delete(self, clip_id: str) -> None:
        self._path(clip_id).unlink(missing_ok=True)

    def entries(self) -> list[str]:
        return sorted(p.name[: -len(_SUFFIX)] for p in self.dir.glob(f"*{_SUFFIX}"))

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob(f"*{_SUFFIX}"))

    def purge(self) -> int:
        """Delete every entry (and stray temp files); returns how many entries went."""
        return self.wipe(self.dir)

    @staticmethod
    def wipe(directory: Path) -> int:
        """`purge` without the key (so `annotator purge` never creates one just to delete)."""
        if not directory.is_dir():
            return 0
        n = 0
        for p in directory.iterdir():
            if p.name.endswith(_SUFFIX):
                n += 1
            if p.name.endswith((_SUFFIX, ".tmp")):
                p.unlink(missing_ok=True)
        return n

    def prune(self, keep: set[str], older_than_s: float = 600.0) -> list[str]:
        """Delete entries for clips not in `keep` (no live lease, no unsent work) that are older
        than `older_than_s`; the age guard spares an entry written just before its lease is
        recorded. Returns the deleted clip ids."""
        cutoff = time.time() - older_than_s
        gone = []
        for p in self.dir.glob(f"*{_SUFFIX}"):
            clip_id = p.name[: -len(_SUFFIX)]
            if clip_id not in keep and p.stat().st_mtime < cutoff:
                p.unlink(missing_ok=True)
                gone.append(clip_id)
        for p in self.dir.glob(".*.tmp"):
            if p.stat().st_mtime < cutoff:
                p.unlink(missing_ok=True)
        return gone
