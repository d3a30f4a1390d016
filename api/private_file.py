"""Writing a file that holds transcripts (an export, a conflicts list) where others may be watching.

`private_output(path)` is the one way such a file is written:

- the data goes to a temp file beside `path` with an unguessable name, created with
  `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600 — nobody can pre-create it, point it elsewhere with a
  symlink, or read it while it is being written;
- it is fsynced and renamed over `path` in one step, so a reader sees the old file or the whole
  new one, and an existing file's looser mode (0644) is not inherited: the result is 0600;
- a symlink at `path` is refused with a message rather than followed (someone else's
  `/tmp/export.jsonl -> ~you/.bashrc` would otherwise overwrite your file). rename(2) replaces a
  link instead of following it, so a link planted after the check cannot redirect the write either.

No Textual, no `annotator` imports: used by `annotator export` (server side) and the client's store.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

PRIVATE_MODE = 0o600


class PrivateFileError(OSError):
    """The destination cannot be written safely; the message names the path and the fix."""


def _refuse_unsafe_destination(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise PrivateFileError(
            f"{path} is a symbolic link: refusing to write through it (remove it or choose "
            "another file name)"
        )
    if not stat.S_ISREG(st.st_mode):
        raise PrivateFileError(f"{path} exists and is not a regular file: choose another name")


@contextlib.contextmanager
def private_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces `path` (mode 0600) when the block ends cleanly.

    On an exception inside the block nothing at `path` changes and the temp file is removed.
    Raises PrivateFileError (an OSError) for a destination that cannot be written safely.
    """
    path = Path(path)
    _refuse_unsafe_destination(path)
    parent = path.parent if str(path.parent) else Path()
    try:
        dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise PrivateFileError(f"{parent}: cannot write here: {e.strerror or e}") from None
    tmp_name = f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(tmp_name, flags, PRIVATE_MODE, dir_fd=dir_fd)
        except OSError as e:
            raise PrivateFileError(f"{parent}: cannot create a file here: {e.strerror}") from None
        try:
            os.fchmod(fd, PRIVATE_MODE)  # a umask can only narrow it; be explicit anyway
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            try:
                os.rename(tmp_name, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except OSError as e:
                raise PrivateFileError(f"{path}: cannot replace it: {e.strerror or e}") from None
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name, dir_fd=dir_fd)
            raise
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)
