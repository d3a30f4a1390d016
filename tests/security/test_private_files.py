"""Finding 9 (issue 10): transcript files are written 0600, atomically, never through a link.

The real `annotator export --out` and `annotator sync --conflicts-jsonl`, run as commands, against
destinations another user on a shared host could have prepared: a symlink to the victim's file,
an existing 0644 file, a pre-created temp file with the old predictable name.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from annotator.store.db import LocalStore
from api.private_file import PrivateFileError, private_output
from tests.fixtures.server import LiveServer, annotator_command


def _export(server: LiveServer, out: Path, home: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*annotator_command(), "export", "--db", server.db, "--data",
         str(server.data_dir), "--out", str(out)],
        capture_output=True, timeout=60, check=False,
        env={**os.environ, "ANNOTATOR_HOME": str(home)},
    )  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_export_refuses_a_symlink_and_replaces_a_0644_file_with_0600(
    module_server: LiveServer, tmp_path: Path
) -> None:
    victim = tmp_path / "victim_bashrc"
    victim.write_text("the victim's file\n")
    trap = tmp_path / "export.jsonl"
    trap.symlink_to(victim)

    refused = _export(module_server, trap, tmp_path / "home")
    assert refused.returncode == 2
    assert b"symbolic link" in refused.stderr and str(trap).encode() in refused.stderr
    assert victim.read_text() == "the victim's file\n" and trap.is_symlink()

    existing = tmp_path / "old.jsonl"
    existing.write_text("old export\n")
    existing.chmod(0o644)
    done = _export(module_server, existing, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert _mode(existing) == 0o600
    assert existing.read_text() != "old export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "export.jsonl",
        "old.jsonl",
        "victim_bashrc",
    ]


def test_a_planted_predictable_temp_file_is_not_written_through(tmp_path: Path) -> None:
    # The old writer used `.NAME.tmp` with O_TRUNC: a link planted there redirected the write.
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / ".conflicts.jsonl.tmp").symlink_to(victim)
    with LocalStore.open(tmp_path / "store" / "local.db") as store:
        count = store.export_conflicts_jsonl(tmp_path / "conflicts.jsonl")
    assert count == 0
    assert victim.read_text() == "keep me"
    assert _mode(tmp_path / "conflicts.jsonl") == 0o600


def test_private_output_is_atomic_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"before")
    with pytest.raises(RuntimeError), private_output(target) as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"before"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    (tmp_path / "dir").mkdir()
    with (
        pytest.raises(PrivateFileError, match="not a regular file"),
        private_output(tmp_path / "dir"),
    ):
        pass


def test_sync_conflicts_jsonl_refuses_a_symlink_with_a_message(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    trap = tmp_path / "conflicts\x1b]0;pwned\x07\x1b[2J.jsonl"  # and a hostile name
    trap.symlink_to(victim)
    done = subprocess.run(
        [*annotator_command(), "sync", "--conflicts-jsonl", str(trap)],
        capture_output=True, timeout=60, check=False,
        env={**os.environ, "ANNOTATOR_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert b"symbolic link" in done.stderr
    unwrapped = done.stderr.replace(b"\n", b"")  # Rich wraps at 80 columns off a terminal
    assert b"\x1b" not in done.stderr and b"conflicts\\x1b]0;pwned" in unwrapped
    assert victim.read_text() == "keep me"
