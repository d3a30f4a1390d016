"""Where queued clips' audio bytes live: the `AudioStore` interface and the local-directory store.

A repository stores a clip's audio through its `AudioStore` and only then commits the clip's row,
so a queued clip always has its audio. Two stores exist:

- `LocalAudioStore` (this module; the SQLite default): files named by sha256 under a directory,
  written and made durable before the rows commit. The database stays small (cheap checkpoints,
  cheap backups of the metadata) and serving a clip is one small file read from the page cache.
- `api.server.postgres_repo.PostgresAudioStore` (the PostgreSQL default): a `bytea` column in the
  same database. Chosen over a shared directory (NFS: its own durability and locking semantics
  and one more thing to mount on every host) and over large objects (a separate catalog, no
  cascade on delete, streaming we do not need for clips of a few seconds): with bytea every
  server process on every host sees a clip the moment its row commits, and one `pg_dump`
  backs up the whole queue, audio included.
"""

from __future__ import annotations

import ctypes
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class AudioMissing(Exception):
    """A queued clip's audio is not in the store (a damaged or partly restored deployment)."""


class AudioStore(Protocol):
    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store (sha256, bytes) pairs; every one is durable when this returns. Storing bytes
        already present is a no-op."""
        ...

    def read(self, sha256: str) -> bytes:
        """A clip's bytes; raises `AudioMissing` when absent."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove a clip's bytes for good (retention); durable when this returns. Deleting bytes
        already gone is a no-op."""
        ...


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs_func() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):  # not Linux: fsync file by file
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return func


SYNCFS = _syncfs_func()


def _syncfs(path: Path) -> bool:
    """Flush every write to the filesystem holding `path` to stable storage (Linux `syncfs`,
    which waits for the data, the metadata and the device's cache). False when unavailable."""
    if SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(path))
    finally:
        os.close(fd)
    return True


def sync_files(paths: list[Path]) -> None:
    """Make the contents of `paths` (all under one directory tree) durable: one `syncfs` for the
    lot where there is one, else an fsync each."""
    if paths and not _syncfs(paths[0]):
        for path in paths:
            fsync_file(path)


def sync_dirs(dirs: set[Path]) -> None:
    if dirs and not _syncfs(next(iter(dirs))):
        for d in sorted(dirs):
            fsync_dir(d)


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


class LocalAudioStore:
    """Files named by sha256 under `<root>/<first two hex digits>/`, owner-only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def read(self, sha256: str) -> bytes:
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            raise AudioMissing(sha256) from None

    def delete(self, sha256: str) -> None:
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """One durability barrier per step instead of one fsync per file: write every temporary
        file, make them all durable, rename them into place, then make the renames durable. A
        crash at any point leaves each final path either absent or holding its complete bytes
        (the renames happen only after the data is on disk). One item costs an fsync of the file
        and one of its directory."""
        pending: list[tuple[Path, Path]] = []
        try:
            for sha256, audio in items:
                path = self.path_for(sha256)
                if path.exists() and path.stat().st_size == len(audio):
                    continue
                private_dir(path.parent)
                pending.append((self._write_tmp(path, audio), path))
            if not pending:
                return
            if len(pending) == 1:
                fsync_file(pending[0][0])
            else:
                sync_files([tmp for tmp, _ in pending])
            for tmp, path in pending:
                tmp.replace(path)
        except BaseException:
            for tmp, _ in pending:
                tmp.unlink(missing_ok=True)
            raise
        dirs = {path.parent for _, path in pending}
        if len(dirs) == 1:
            fsync_dir(next(iter(dirs)))
        else:
            sync_dirs(dirs)

    @staticmethod
    def _write_tmp(path: Path, audio: bytes) -> Path:
        """`audio` in a new private temporary file beside `path` (not yet fsynced)."""
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(audio)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp
