"""Where `annotator relay` keeps its pairing secret, so a restarted relay pairs as before.

The secret lives in the laptop's keyring when one really works, else in a 0600 file in the
config directory (`relay.secret`). As with the cache key, an existing file wins over the keyring
(a keyring that starts answering later must not silently change the secret), and with
ANNOTATOR_HOME set the keyring is left alone unless ANNOTATOR_KEYRING=1.

`annotator relay --new-secret` rotates it: the annotator's TUI on the host is then re-paired in
place (it offers a masked prompt), nothing else changes.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from annotator import paths
from annotator.relay.protocol import new_secret, weak_secret

log = logging.getLogger("annotator.relay")

SECRET_FILE = "relay.secret"  # noqa: S105 - a file name
KEYRING_SERVICE = "annotator"
KEYRING_USER = "relay-pairing-secret"


class SecretStoreError(Exception):
    """The stored secret exists but cannot be trusted (wrong owner, not a file)."""


def load_relay_secret(*, rotate: bool = False) -> tuple[str, str, bool]:
    """(secret, where it is kept, whether it was just made); a new one when `rotate`."""
    path = paths.config_dir() / SECRET_FILE
    if path.exists():
        if not rotate:
            stored = _read(path)
            if stored is not None:
                return stored, str(path), False
        secret = new_secret()
        _write(path, secret)
        return secret, str(path), True
    if _keyring_allowed():
        kept = _from_keyring(rotate)
        if kept is not None:
            return kept[0], "the system keyring", kept[1]
    secret = new_secret()
    _write(path, secret)
    return secret, str(path), True


def _keyring_allowed() -> bool:
    return os.environ.get("ANNOTATOR_KEYRING") == "1" or not os.environ.get("ANNOTATOR_HOME")


def _from_keyring(rotate: bool) -> tuple[str, bool] | None:
    try:
        import keyring

        from annotator.store.keys import keyring_usable

        if not keyring_usable():
            return None
        stored = None if rotate else keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
        if stored and weak_secret(stored) is None:
            return stored, False
        secret = new_secret()
        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, secret)
        # Some backends accept a write and drop it (a locked collection): then use the file.
        if keyring.get_password(KEYRING_SERVICE, KEYRING_USER) != secret:
            return None
        return secret, True
    except Exception as exc:  # noqa: BLE001 - any backend failure means "no keyring here"
        log.info("keyring unavailable (%s); the pairing secret goes in a file", type(exc).__name__)
        return None


def _read(path: Path) -> str | None:
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        raise SecretStoreError(f"{path} is not a regular file; move it away")
    if st.st_uid != os.getuid():
        raise SecretStoreError(f"{path} belongs to another user; move it away")
    if st.st_mode & 0o077:
        # Others could read it: that secret is exposed, so it is replaced, not reused.
        log.warning("%s was readable by others: made a new pairing secret", path)
        return None
    text = path.read_text("utf-8").strip()
    if weak_secret(text) is not None:
        log.warning("%s does not hold a usable pairing secret: made a new one", path)
        return None
    return text


def _write(path: Path, secret: str) -> None:
    """A fresh 0600 file with a random name, renamed over the old one: never half written."""
    paths.ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secret + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
