"""Where the cache key lives: the OS keyring when one really works, else a 0600 file.

Headless SSH hosts usually have no keyring backend (keyring then answers with its `fail` backend,
or a chainer of nothing), so the file is the common case there. The key is looked for in the file
first: once a host has chosen the file, a keyring that later starts (or stops) answering must not
silently switch keys and orphan the encrypted cache.

With ANNOTATOR_HOME set (tests, the demo, shared hosts), the keyring is left alone unless
ANNOTATOR_KEYRING=1: the keyring is per user, not per home, and tests must not write to it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from annotator import paths

log = logging.getLogger("annotator.store")

KEY_BYTES = 32
KEY_FILE = "cache.key"
KEYRING_SERVICE = "annotator"
KEYRING_USER = "clip-cache-key"


class CacheKeyError(Exception):
    """The key file exists but cannot be trusted or read (wrong owner, bad content)."""


def load_cache_key(*, use_keyring: bool | None = None) -> tuple[bytes, str]:
    """The 256-bit cache key and where it lives ("keyring" or the key file's path)."""
    key_file = paths.config_dir() / KEY_FILE
    if key_file.exists():
        return _read_key_file(key_file), str(key_file)
    if use_keyring is None:
        use_keyring = os.environ.get("ANNOTATOR_KEYRING") == "1" or not os.environ.get(
            "ANNOTATOR_HOME"
        )
    if use_keyring:
        key = _keyring_key()
        if key is not None:
            return key, "keyring"
    return _create_key_file(key_file), str(key_file)


def keyring_usable() -> bool:
    """True when keyring's chosen backend can actually store secrets."""
    import keyring
    from keyring.backends import chainer, fail, null

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    # A chainer with nothing behind it is keyring's way of saying "no backend" on some hosts.
    return not (isinstance(backend, chainer.ChainerBackend) and not backend.backends)


def _keyring_key() -> bytes | None:
    try:
        import keyring

        if not keyring_usable():
            return None
        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
        if stored is not None:
            key = base64.b64decode(stored, validate=True)
            if len(key) == KEY_BYTES:
                return key
            log.warning("the cache key in the keyring has the wrong length; using a key file")
            return None
        key = secrets.token_bytes(KEY_BYTES)
        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, base64.b64encode(key).decode())
        # Read back: some backends accept a write and drop it (locked collections).
        if keyring.get_password(KEYRING_SERVICE, KEYRING_USER) != base64.b64encode(key).decode():
            return None
        return key
    except Exception as e:  # noqa: BLE001 - any backend failure means "no keyring here"
        log.info("keyring unavailable (%s); using a key file", type(e).__name__)
        return None


def _read_key_file(path: Path) -> bytes:
    st = path.stat()
    if st.st_uid != os.getuid():
        raise CacheKeyError(f"{path} belongs to another user; refusing to use it as the cache key")
    if not stat.S_ISREG(st.st_mode):
        raise CacheKeyError(f"{path} is not a regular file")
    if st.st_mode & 0o077:
        # Two clients starting at once must not both rotate (the second would replace the key
        # the first just sealed with): one does it under the lock, the other reads its result.
        with _rotation_lock(path):
            if path.stat().st_mode & 0o077:
                return _rotate_exposed(path, _decode_key(path.read_bytes(), path))
    return _decode_key(path.read_bytes(), path)


@contextlib.contextmanager
def _rotation_lock(path: Path) -> Iterator[None]:
    fd = os.open(path.with_name(".cache.key.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _decode_key(raw: bytes, path: Path) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError as e:
        raise CacheKeyError(f"{path} does not hold a cache key: {e}") from e
    if len(key) != KEY_BYTES:
        raise CacheKeyError(f"{path} does not hold a {KEY_BYTES}-byte cache key")
    return key


# ---------------------------------------------------------------- an exposed key is replaced

#: Keys replaced because they were exposed, kept (0600) only until local.db is resealed under
#: the new one: they decrypt nothing anyone could not already read, but unsent work sealed under
#: them must not be lost in between.
RETIRED_FILE = "cache.key.retired"
#: key file path -> what was done to it in this process (tests run many homes in one process)
_notice: dict[str, str] = {}


def _rotate_exposed(path: Path, old: bytes) -> bytes:
    """A key file others could read is treated as known to them: a new key replaces it, the
    cache encrypted under it is dropped (clips download again), and the old key is kept aside
    for `LocalStore.open` to reseal local.db with the new one."""
    retired = path.with_name(RETIRED_FILE)
    fd = os.open(retired, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "ab") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(base64.b64encode(old) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    key = secrets.token_bytes(KEY_BYTES)
    _write_key(path, key, replace=True)
    from annotator.store.cache import ClipCache, default_dir

    dropped = ClipCache.wipe(default_dir())
    message = (
        f"the cache key {path} was readable by other users, so it was replaced with a new one "
        f"and the {dropped} cached clip(s) encrypted under it were deleted (they download again)"
    )
    log.warning("%s", message)
    _notice[str(path)] = message
    return key


def exposure_notice() -> str | None:
    """What `_rotate_exposed` did in this process, for a banner; None when nothing happened."""
    return _notice.get(str(paths.config_dir() / KEY_FILE))


def retired_keys() -> list[bytes]:
    path = paths.config_dir() / RETIRED_FILE
    try:
        lines = path.read_bytes().split()
    except FileNotFoundError:
        return []
    return [_decode_key(line, path) for line in lines if line.strip()]


def discard_retired_keys() -> None:
    (paths.config_dir() / RETIRED_FILE).unlink(missing_ok=True)


def _create_key_file(path: Path) -> bytes:
    paths.ensure_private_dir(path.parent)
    key = secrets.token_bytes(KEY_BYTES)
    if not _write_key(path, key, replace=False):
        return _read_key_file(path)
    return key


def _write_key(path: Path, key: bytes, *, replace: bool) -> bool:
    """Write `key` to `path` via a 0600 temp file; False when `replace` is off and it exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(base64.b64encode(key) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            tmp.replace(path)
            return True
        try:
            # link() refuses to replace: of two processes racing here, both end up with the winner.
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True
