"""The encrypted clip cache and where its key lives."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend

from annotator.store import CacheKeyError, ClipCache, load_cache_key
from annotator.store.keys import KEY_FILE, keyring_usable

HEADERS = (b"RIFF", b"OggS", b"fLaC", b"ID3")


def _fake_wav(n: int = 48_000) -> bytes:
    pcm = bytes((i * 37) % 251 for i in range(n))
    return b"RIFF" + (36 + n).to_bytes(4, "little") + b"WAVEfmt " + b"\x00" * 24 + b"data" + pcm


@pytest.fixture
def cache(home: Path) -> ClipCache:
    key, _ = load_cache_key()
    return ClipCache(home / "data" / "cache", key)


def test_round_trip_and_listing(cache: ClipCache) -> None:
    audio = _fake_wav()
    cache.put("clipA", audio)
    cache.put("clipB", b"OggS" + os.urandom(1000))
    assert cache.get("clipA") == audio
    assert cache.entries() == ["clipA", "clipB"]
    assert "clipA" in cache and "nope" not in cache
    assert cache.size_bytes() > len(audio)
    cache.delete("clipA")
    assert cache.get("clipA") is None and cache.entries() == ["clipB"]
    assert cache.purge() == 1 and cache.entries() == []


def test_nothing_readable_on_disk(cache: ClipCache, home: Path) -> None:
    audio = _fake_wav()
    pcm = audio[-40_000:]
    cache.put("clip1", audio)
    cache.put("clip1", audio)  # a rewrite uses a fresh nonce and leaves no temp file behind
    files = [p for p in home.rglob("*") if p.is_file()]
    assert [p.name for p in (home / "data" / "cache").iterdir()] == ["clip1.clip"]
    for f in files:
        blob = f.read_bytes()
        assert not blob.startswith(HEADERS), f
        for h in HEADERS:
            assert h not in blob, f
        assert pcm[:64] not in blob and pcm[20_000:20_064] not in blob, f
    entry = home / "data" / "cache" / "clip1.clip"
    assert entry.stat().st_mode & 0o777 == 0o600
    assert (home / "data" / "cache").stat().st_mode & 0o777 == 0o700


def test_same_plaintext_twice_gives_different_ciphertext(cache: ClipCache) -> None:
    cache.put("a1", b"x" * 100)
    first = (cache.dir / "a1.clip").read_bytes()
    cache.put("a1", b"x" * 100)
    assert (cache.dir / "a1.clip").read_bytes() != first


@pytest.mark.parametrize("where", [0, 5, 20, -1])
def test_tampering_is_detected_and_the_entry_deleted(cache: ClipCache, where: int) -> None:
    cache.put("clip1", _fake_wav(1000))
    path = cache.dir / "clip1.clip"
    blob = bytearray(path.read_bytes())
    blob[where] ^= 0x01
    path.write_bytes(bytes(blob))
    assert cache.get("clip1") is None
    assert not path.exists()


def test_an_entry_renamed_to_another_clip_fails(cache: ClipCache) -> None:
    cache.put("clip1", b"secret audio")
    (cache.dir / "clip1.clip").rename(cache.dir / "clip2.clip")
    assert cache.get("clip2") is None


def test_truncated_entry_and_foreign_key(cache: ClipCache, home: Path) -> None:
    cache.put("clip1", b"secret audio")
    (cache.dir / "clip1.clip").write_bytes(b"ANC1")
    assert cache.get("clip1") is None
    cache.put("clip2", b"secret audio")
    other = ClipCache(cache.dir, os.urandom(32))
    assert other.get("clip2") is None


def test_clip_ids_cannot_escape_the_cache(cache: ClipCache) -> None:
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(ValueError):
            cache.put(bad, b"x")


def test_prune_keeps_live_and_young_entries(cache: ClipCache) -> None:
    for c in ("live", "orphan", "young"):
        cache.put(c, b"x")
    old = 1_000_000_000
    for c in ("live", "orphan"):
        os.utime(cache.dir / f"{c}.clip", (old, old))
    assert cache.prune({"live"}) == ["orphan"]
    assert cache.entries() == ["live", "young"]


# ---------------------------------------------------------------- the key


def test_key_file_created_private_and_stable(home: Path) -> None:
    key, where = load_cache_key()
    path = home / "config" / KEY_FILE
    assert where == str(path) and len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert load_cache_key() == (key, where)


def test_loose_key_file_is_treated_as_exposed_and_replaced(
    home: Path, cache: ClipCache, caplog: pytest.LogCaptureFixture
) -> None:
    # (tests/store/test_at_rest.py: local.db sealed under the exposed key is resealed, not lost)
    key, where = load_cache_key()
    cache.put("c1", _fake_wav())
    Path(where).chmod(0o644)
    new, _ = load_cache_key()
    assert new != key and len(new) == 32
    assert Path(where).stat().st_mode & 0o777 == 0o600
    assert cache.entries() == []  # encrypted under a key others may hold: dropped
    assert "readable by other users" in caplog.text
    assert load_cache_key()[0] == new  # stable from then on


def test_garbage_key_file_is_refused(home: Path) -> None:
    path = home / "config" / KEY_FILE
    path.parent.mkdir(parents=True)
    path.write_text("not base64 !!")
    path.chmod(0o600)
    with pytest.raises(CacheKeyError):
        load_cache_key()


class _MemoryKeyring(KeyringBackend):
    """An in-process backend (keyring ships none): proves the keyring path end to end."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Any:
    previous = keyring.get_keyring()
    backend = _MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_keyring_used_when_a_backend_works(home: Path, memory_keyring: _MemoryKeyring) -> None:
    assert keyring_usable()
    key, where = load_cache_key(use_keyring=True)
    assert where == "keyring"
    assert base64.b64decode(memory_keyring.store[("annotator", "clip-cache-key")]) == key
    assert not (home / "config" / KEY_FILE).exists()
    assert load_cache_key(use_keyring=True) == (key, "keyring")


def test_fail_backend_falls_back_to_a_file(home: Path) -> None:
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not keyring_usable()
        _, where = load_cache_key(use_keyring=True)
        assert where.endswith(KEY_FILE)
    finally:
        keyring.set_keyring(previous)


def test_tests_never_touch_the_real_keyring(home: Path, memory_keyring: _MemoryKeyring) -> None:
    # ANNOTATOR_HOME is set (by the `home` fixture): the per-user keyring is left alone.
    _, where = load_cache_key()
    assert where.endswith(KEY_FILE) and memory_keyring.store == {}
