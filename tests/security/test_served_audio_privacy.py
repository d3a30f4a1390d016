"""Finding 1 (issue 10): a recording's tags, file name and file hash never reach an annotator.

Tagged files of every accepted format go through the real `annotator ingest` into a real
`annotator serve`; an annotator leases them over HTTP, and every byte they receive (lease JSON,
headers, audio, renew, the escalations and stats views) is searched for the tag strings and the
file name.
"""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.fixtures import ingest_files as gen
from tests.fixtures.server import DEMO_CLIPS_DIR, LiveServer, annotator_command
from tests.fixtures.tagged_audio import SECRETS, write_tagged

KINDS = ("wav", "flac", "vorbis", "opus", "mp3")


def _ingest_command(server: LiveServer, paths: list[Path]) -> None:
    done = subprocess.run(
        [*annotator_command(), "ingest", *map(str, paths), "--db", server.db,
         "--data", str(server.data_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _everything_an_annotator_sees(server: LiveServer, expected: int) -> tuple[list[bytes], dict]:
    """Raw bytes of every response an annotator gets for the queue, and the leases by sha256."""
    seen: list[bytes] = []
    with server.client(server.annotator_token) as http:
        lease = http.post("/v1/leases", json={"count": 50, "ttl_seconds": 600})
        assert lease.status_code == 200, lease.text
        seen += [lease.content, repr(dict(lease.headers)).encode()]
        leases = lease.json()["leases"]
        assert len(leases) == expected
        for le in leases:
            audio = http.get(f"/v1/leases/{le['lease_id']}/audio")
            assert audio.status_code == 200
            seen += [audio.content, repr(dict(audio.headers)).encode()]
            renew = http.post(f"/v1/leases/{le['lease_id']}/renew", json={"ttl_seconds": 600})
            seen.append(renew.content)
            le["audio"] = audio.content
        for path in ("/v1/me/stats", "/v1/taxonomy"):
            seen.append(http.get(path).content)
    return seen, {le["clip"]["sha256"]: le for le in leases}


def _wav_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    pos, ids = 12, []
    while pos + 8 <= len(data):
        ids.append(data[pos : pos + 4])
        pos += 8 + struct.unpack("<I", data[pos + 4 : pos + 8])[0]
    assert pos == len(data), "bytes after the last chunk"
    return ids


def test_tags_names_and_file_hashes_of_every_format_never_reach_an_annotator(
    live_server: LiveServer, tmp_path: Path
) -> None:
    src = tmp_path / "incoming"
    src.mkdir()
    paths = [write_tagged(src, kind, freq=300.0 + 50 * i) for i, kind in enumerate(KINDS)]
    originals = {p: p.read_bytes() for p in paths}

    _ingest_command(live_server, paths)
    seen, leases = _everything_an_annotator_sees(live_server, len(paths))

    blob = b"\n".join(seen)
    for secret in SECRETS:
        for variant in {secret, secret.lower(), secret.upper()}:
            assert variant.encode() not in blob, f"{variant!r} reached an annotator"
            assert variant.encode("utf-16-le") not in blob
    file_hashes = {hashlib.sha256(data).hexdigest() for data in originals.values()}
    assert not file_hashes & set(leases), "a lease announces an original file's sha256"
    assert not any(h.encode() in blob for h in file_hashes)
    for sha, le in leases.items():
        audio = le["audio"]
        assert hashlib.sha256(audio).hexdigest() == sha
        assert _wav_chunks(audio) == [b"fmt ", b"data"]
        assert le["clip"]["clip_id"] not in {p.stem for p in paths}
    # The served samples are the recording's (each file's tone is distinct).
    served = sorted(
        round(float(np.abs(np.fft.rfft(sf.read(io.BytesIO(le["audio"]))[0])).argmax()))
        for le in leases.values()
    )
    assert served == [300 + 50 * i for i in range(len(KINDS))]


def test_the_same_recording_with_different_tags_is_one_clip(
    live_server: LiveServer, tmp_path: Path
) -> None:
    plain = gen.write_audio(tmp_path, "plain", "flac", seconds=1.0, freq=500.0)
    (tmp_path / "tagged").mkdir()
    tagged = write_tagged(tmp_path / "tagged", "flac", freq=500.0)
    _ingest_command(live_server, [plain, tagged])
    _everything_an_annotator_sees(live_server, 1)


def test_bundled_demo_clips_are_served_as_ingest_made_them(
    live_server: LiveServer, tmp_path: Path
) -> None:
    paths = sorted(p for p in DEMO_CLIPS_DIR.iterdir() if p.suffix == ".opus")[:3]
    assert paths, f"no demo clips in {DEMO_CLIPS_DIR}"
    _ingest_command(live_server, paths)
    seen, leases = _everything_an_annotator_sees(live_server, len(paths))
    blob = b"".join(seen)
    # Neither the names nor the encoder's vendor string (the files' only tag) is served.
    assert not any(p.stem.encode() in blob for p in paths)
    assert b"libopus" not in blob and b"OpusTags" not in blob
    for le in leases.values():
        assert _wav_chunks(le["audio"]) == [b"fmt ", b"data"]
