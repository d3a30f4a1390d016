"""Ingest: real audio files (made with numpy + soundfile in tmp dirs), good and broken."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from api.models import MAX_TRANSCRIPT_CHARS
from api.server.ingest import IngestReport, ingest_paths, load_asr_hints
from api.server.records import NewClip
from api.taxonomy import TaxonomyIndex, load_default_taxonomy
from tests.fixtures import ingest_files as gen

DEMO_DIR = Path(__file__).resolve().parents[2] / "annotator" / "demo_clips"


class Queue:
    """The storage side of ingest in miniature: clips by sha256, None for one already there."""

    def __init__(self) -> None:
        self.clips: dict[str, NewClip] = {}
        self.calls = 0

    def add_clip(self, clip: NewClip) -> str | None:
        self.calls += 1
        if clip.sha256 in self.clips:
            return None
        self.clips[clip.sha256] = clip
        return f"clip{len(self.clips)}"

    def by_name(self, name: str) -> NewClip:
        return next(c for c in self.clips.values() if c.source_name == name)


def ingest(queue: Queue, *paths: Path, hints: dict[str, str] | None = None) -> IngestReport:
    return ingest_paths(list(paths), locale="en-US", asr_hints=hints or {}, add_clip=queue.add_clip)


def skipped_reason(report: IngestReport, path: Path) -> str:
    reasons = dict(report.skipped)
    assert str(path) in reasons, f"{path} not reported; skipped: {report.skipped}"
    return reasons[str(path)]


# ---------------------------------------------------------------- good files


@pytest.mark.parametrize(
    ("kind", "rate", "channels"),
    [
        ("wav", 44_100, 2),
        ("flac", 8_000, 1),
        ("vorbis", 22_050, 1),
        ("opus", 48_000, 2),
        ("mp3", 16_000, 1),
    ],
)
def test_each_container_is_ingested_with_its_true_properties(
    tmp_path: Path, kind: str, rate: int, channels: int
) -> None:
    path = gen.write_audio(tmp_path, "request", kind, seconds=1.5, rate=rate, channels=channels)
    queue = Queue()

    report = ingest(queue, path)

    assert report.skipped == [] and report.duplicates == []
    assert report.ingested == [(str(path), "clip1")]
    clip = queue.by_name(path.name)
    # Served as ingest's own 16-bit WAV of the same samples, hashed as served.
    assert clip.sha256 == hashlib.sha256(clip.audio).hexdigest()
    assert clip.media_type == "audio/wav"
    served, served_rate = sf.read(io.BytesIO(clip.audio), dtype="float32", always_2d=True)
    original, _ = sf.read(io.BytesIO(path.read_bytes()), dtype="float32", always_2d=True)
    assert served_rate == rate and served.shape == original.shape
    # Every sample as the client decodes the original (an MP3 read in blocks would glitch).
    assert np.abs(served - np.clip(original, -1, 1)).max() <= 1 / 32768
    assert clip.sample_rate == rate
    assert clip.channels == channels
    assert clip.duration_s == pytest.approx(1.5, abs=0.01)
    assert clip.locale == "en-US"
    assert clip.asr_hint is None


def test_content_in_another_container_than_its_extension_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "actually_flac.wav"
    path.write_bytes(gen.encode("flac", 1.0))
    queue = Queue()
    report = ingest(queue, path)
    assert report.skipped == []
    assert queue.by_name("actually_flac.wav").audio[:4] == b"RIFF"


def test_stream_written_wav_with_placeholder_sizes_is_not_called_truncated(tmp_path: Path) -> None:
    # `arecord` and friends write 0xFFFFFFFF when they cannot seek back to fill in the sizes.
    data = bytearray(gen.encode("wav", 1.0))
    data[4:8] = b"\xff\xff\xff\xff"
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = b"\xff\xff\xff\xff"
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(data))
    queue = Queue()
    report = ingest(queue, path)
    assert report.skipped == []
    assert queue.by_name("streamed.wav").duration_s == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------- bad files


def _silence_wav(seconds: float, rate: int = 16_000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(seconds * rate), channels), np.int16), rate, format="WAV")
    return buf.getvalue()


def _cut(kind: str) -> bytes:
    data = gen.encode(kind, 3.0)
    return data[: len(data) // 2]


def _aiff() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, gen.tone(1.0), 16_000, format="AIFF")
    return buf.getvalue()


BAD_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "zero.wav": (lambda: b"", "empty: the file has 0 bytes"),
    "no_frames.wav": (lambda: _silence_wav(0.0), "empty"),
    "too_short.wav": (lambda: _silence_wav(0.02), "empty"),
    "truncated.wav": (gen.truncated_wav, "truncated"),
    "lying_header.wav": (gen.wav_claiming_more, "truncated: the header declares 3.00 s"),
    "random.wav": (lambda: np.random.default_rng(7).bytes(4000), "undecodable"),
    "notes.flac": (lambda: b"these are my notes, not audio\n" * 40, "undecodable"),
    "truncated.flac": (lambda: _cut("flac"), "truncated"),
    "truncated.opus": (lambda: _cut("opus"), "truncated"),
    "truncated.ogg": (lambda: _cut("vorbis"), "truncated"),
    "truncated.mp3": (lambda: _cut("mp3"), "truncated"),
    "nan.wav": (gen.float_wav_with_nan, "NaN or infinite samples at 0.50 s"),
    "low_rate.wav": (lambda: _silence_wav(1.0, rate=4_000), "sample rate 4000 Hz"),
    "nine_channels.wav": (lambda: _silence_wav(1.0, channels=9), "9 channels"),
    "aiff_inside.wav": (_aiff, "unsupported format AIFF"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_reported_by_name_and_the_rest_ingested(tmp_path: Path, name: str) -> None:
    make, expected = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_bytes(make())
    good = gen.write_audio(tmp_path, "zz_good", "flac")
    queue = Queue()

    report = ingest(queue, tmp_path)

    assert expected in skipped_reason(report, bad)
    assert report.ingested == [(str(good), "clip1")]
    assert [c.source_name for c in queue.clips.values()] == ["zz_good.flac"]


def test_too_long_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meeting.wav"
    rate = 8_000
    with sf.SoundFile(path, "w", rate, 1, format="WAV", subtype="PCM_16") as f:
        for _ in range(601):
            f.write(np.zeros(rate, np.int16))
    report = ingest(Queue(), path)
    assert skipped_reason(report, path).startswith("too long: 10.0 min")


def test_a_mixed_tree_is_walked_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    (tmp_path / ".hidden").mkdir()
    good = [
        gen.write_audio(tmp_path / "a", "one", "wav", freq=200),
        gen.write_audio(tmp_path / "b", "two", "opus", freq=300),
        gen.write_audio(tmp_path / "b" / "deeper", "three", "mp3", freq=400),
        gen.write_audio(tmp_path, "four", "vorbis", freq=500),
    ]
    upper = tmp_path / "b" / "FIVE.FLAC"
    upper.write_bytes(gen.encode("flac", freq=600))
    broken = tmp_path / "a" / "broken.wav"
    broken.write_bytes(gen.truncated_wav())
    (tmp_path / "a" / "readme.txt").write_text("ignored: not an audio name")
    (tmp_path / "._four.wav").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    gen.write_audio(tmp_path / ".hidden", "secret", "wav", freq=700)

    report = ingest(Queue(), tmp_path)

    expected = sorted([*good, upper], key=lambda p: p.relative_to(tmp_path).parts)
    assert [name for name, _ in report.ingested] == [str(p) for p in expected]
    assert report.skipped == [(str(broken), skipped_reason(report, broken))]


def test_named_paths_that_are_not_audio_are_reported(tmp_path: Path) -> None:
    text = tmp_path / "transcripts.txt"
    text.write_text("hello")
    missing = tmp_path / "nope.wav"
    link = tmp_path / "dangling.wav"
    link.symlink_to(tmp_path / "gone.wav")
    good = gen.write_audio(tmp_path, "ok", "wav")

    report = ingest(Queue(), text, missing, link, good)

    assert "not an audio file name" in skipped_reason(report, text)
    assert "not found" in skipped_reason(report, missing)
    assert "broken symbolic link" in skipped_reason(report, link)
    assert report.ingested == [(str(good), "clip1")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = gen.write_audio(tmp_path, "locked", "wav")
    path.chmod(0)
    try:
        report = ingest(Queue(), path)
    finally:
        path.chmod(0o600)
    assert "permission denied" in skipped_reason(report, path)


def test_a_read_error_skips_only_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads everything, so the OS error is raised on purpose for one file.
    locked = gen.write_audio(tmp_path, "a_locked", "wav", freq=300)
    good = gen.write_audio(tmp_path, "b_good", "wav", freq=400)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == locked.name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = ingest(Queue(), tmp_path)
    assert "permission denied" in skipped_reason(report, locked)
    assert report.ingested == [(str(good), "clip1")]


# ---------------------------------------------------------------- duplicates and hints


def test_duplicates_are_queued_once_within_a_run_and_across_runs(tmp_path: Path) -> None:
    first = gen.write_audio(tmp_path, "a", "wav")
    same = tmp_path / "copy_of_a.wav"
    same.write_bytes(first.read_bytes())
    other = gen.write_audio(tmp_path, "b", "wav", freq=880)
    queue = Queue()

    report = ingest(queue, tmp_path, first)

    assert [n for n, _ in report.ingested] == [str(first), str(other)]
    assert report.duplicates == [str(same), str(first)]
    assert queue.calls == 2  # a repeat within one run never reaches storage

    again = ingest(queue, tmp_path)
    assert again.ingested == []
    assert sorted(again.duplicates) == sorted([str(first), str(same), str(other)])
    assert len(queue.clips) == 2


def test_asr_hints_attach_by_base_name_cleaned_and_bounded(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    lights = gen.write_audio(tmp_path / "sub", "lights", "wav", freq=300)
    alarm = gen.write_audio(tmp_path, "alarm", "flac", freq=400)
    plain = gen.write_audio(tmp_path, "plain", "opus", freq=500)
    hints = {
        "lights.wav": "  turn of the\tlights \n in the  kit\u200bchen\x00 \u202e",
        "alarm.flac": "x" * (MAX_TRANSCRIPT_CHARS + 100),
        "plain.opus": "   ",
        "elsewhere.wav": "not in this batch",
    }
    queue = Queue()

    report = ingest(queue, tmp_path, hints=hints)

    assert queue.by_name(lights.name).asr_hint == "turn of the lights in the kitchen"
    assert queue.by_name(alarm.name).asr_hint == "x" * MAX_TRANSCRIPT_CHARS
    assert queue.by_name(plain.name).asr_hint is None
    assert report.unused_hints == ["elsewhere.wav"]
    assert "1 ASR hint matched no file" in report.summary()


def test_an_invalid_locale_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    queue = Queue()
    with pytest.raises(ValueError, match=r"invalid locale 'en US'.*en-US"):
        ingest_paths([tmp_path], locale="en US", asr_hints={}, add_clip=queue.add_clip)
    assert queue.calls == 0


# ---------------------------------------------------------------- output


def test_summary_and_skipped_list_are_plain_and_literal(tmp_path: Path) -> None:
    weird = tmp_path / "[bold red]odd.wav"
    weird.write_bytes(b"")
    gen.write_audio(tmp_path, "good", "wav")
    report = ingest(Queue(), tmp_path)
    assert report.summary() == "1 clip ingested, 0 duplicates (already queued), 1 file skipped"

    out = io.StringIO()
    report.print_skipped(Console(file=out, width=40, color_system=None))
    assert out.getvalue() == f"skipped {weird}: empty: the file has 0 bytes\n"


def _many_files(directory: Path, n: int) -> None:
    for i in range(n):
        gen.write_audio(directory, f"clip{i:02d}", "wav", seconds=0.1, freq=200 + 10 * i)


def test_a_progress_bar_shows_for_a_large_ingest(tmp_path: Path) -> None:
    _many_files(tmp_path, 21)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    report = ingest_paths(
        [tmp_path], locale="en-US", asr_hints={}, add_clip=Queue().add_clip, progress=True,
        console=console,
    )  # fmt: skip
    assert len(report.ingested) == 21
    assert "ingesting" in out.getvalue() and "21/21" in out.getvalue()


def test_no_progress_bar_for_a_small_ingest_or_when_not_asked(tmp_path: Path) -> None:
    _many_files(tmp_path, 3)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True)
    ingest_paths(
        [tmp_path], locale="en-US", asr_hints={}, add_clip=Queue().add_clip, progress=True,
        console=console,
    )  # fmt: skip
    assert out.getvalue() == ""


# ---------------------------------------------------------------- load_asr_hints


def test_load_asr_hints_reads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "hints.jsonl"
    lines = [
        {"file": "a.wav", "asr_hint": "set and alarm"},
        {"file": "batch/b.flac", "asr_hint": "turn of the lights"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", "utf-8")
    assert load_asr_hints(path) == {"a.wav": "set and alarm", "b.flac": "turn of the lights"}


def test_load_asr_hints_reads_tsv_with_header_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "hints.tsv"
    path.write_bytes("\ufefffile\tasr_hint\na.wav\tplay some jazz\nb.mp3\t\n".encode())
    assert load_asr_hints(path) == {"a.wav": "play some jazz", "b.mp3": ""}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"file": "a.wav", "asr_hint": "x"}\n\n{"file": "b.wav", "asr_hint": \n',
            ":3: invalid JSON",
        ),
        ('{"file": "a.wav"}\n', ':1: "asr_hint" must be a string'),
        ('{"file": "", "asr_hint": "x"}\n', ':1: "file" must be a non-empty string'),
        ('{"file": "a.wav", "asr_hint": 7}\n', ':1: "asr_hint" must be a string'),
        ('["a.wav", "x"]\n', ":1: expected a JSON object"),
        ("a.wav\tone\nb.wav has no tab\n", ":2: expected 'file<TAB>hint'"),
        ("\tno name\n", ":1: the file name before the tab is empty"),
        (
            "a.wav\tone\nb.wav\ttwo\na.wav\tthree\n",
            ":3: 'a.wav' already has a different hint on line 1",
        ),
    ],
)
def test_load_asr_hints_names_the_malformed_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hints.txt"
    path.write_text(text, "utf-8")
    with pytest.raises(ValueError) as err:
        load_asr_hints(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_load_asr_hints_reports_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read ASR hints"):
        load_asr_hints(tmp_path / "missing.jsonl")
    latin = tmp_path / "latin1.tsv"
    latin.write_bytes("caf\xe9.wav\tun caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_asr_hints(latin)


# ---------------------------------------------------------------- the bundled demo clips


def _manifest() -> list[dict[str, object]]:
    entries = json.loads((DEMO_DIR / "manifest.json").read_text("utf-8"))
    assert isinstance(entries, list)
    return entries


def test_manifest_matches_the_bundled_files_and_the_default_taxonomy() -> None:
    entries = _manifest()
    index = TaxonomyIndex(load_default_taxonomy())
    audio = {
        p.name for p in DEMO_DIR.iterdir() if p.suffix in {".opus", ".ogg", ".flac", ".wav", ".mp3"}
    }

    assert len(entries) >= 20
    assert sorted(str(e["file"]) for e in entries) == sorted(audio)
    for e in entries:
        assert e["intent"] in index.intent_ids, e
        flags = e["flags"]
        assert isinstance(flags, list) and set(flags) <= index.flag_ids, e
        assert e["locale"] in ("en-US", "en-GB"), e
        text = str(e["text"])
        assert bool(text) == (e["intent"] != "no_speech"), e
        hint = e.get("asr_hint")
        if hint:  # the engine's draft; "" when it heard nothing (the no_speech clip)
            assert isinstance(hint, str) and not index.lint_transcript(hint), e
    intents = [e["intent"] for e in entries]
    assert len(set(intents)) >= 20
    assert {"not_device_directed", "no_speech"} <= set(intents)
    assert sum("asr_hint" in e for e in entries) >= 6
    assert sum("pii" in e["flags"] for e in entries) >= 1  # type: ignore[operator]
    assert {Path(str(e["file"])).suffix for e in entries} >= {
        ".opus",
        ".ogg",
        ".flac",
        ".wav",
        ".mp3",
    }
    assert sum((DEMO_DIR / a).stat().st_size for a in audio) < 1_500_000


def test_every_bundled_demo_clip_ingests_cleanly() -> None:
    entries = _manifest()
    queue = Queue()
    hints = {str(e["file"]): str(e["asr_hint"]) for e in entries if "asr_hint" in e}

    report = ingest(queue, DEMO_DIR, hints=hints)

    assert report.skipped == [] and report.duplicates == [] and report.unused_hints == []
    assert len(report.ingested) == len(entries)
    for e in entries:
        clip = queue.by_name(str(e["file"]))
        assert clip.sample_rate == 16_000 and clip.channels == 1
        assert 1.0 < clip.duration_s < 10.0
        # The engine's empty draft of a clip without speech (room noise) is no draft at all.
        assert clip.asr_hint == (e.get("asr_hint") or None)
