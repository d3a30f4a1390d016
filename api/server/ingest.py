"""Server-side ingest: turn audio files into verified `NewClip`s, skipping bad ones with a reason.

An annotator must never be handed a clip that does not play, plays silence because the header
lied, or is a 3-hour recording; each of those costs a lease, a skip and a confused person. So
every file is decoded in full here, once, and compared with what its header claims.

**What is served is made here, never the customer's file.** Recordings arrive carrying whatever
their device or pipeline wrote into them: Vorbis comments, FLAC VORBIS_COMMENT and PICTURE
blocks, WAV LIST/INFO and `bext` chunks, ID3v1/v2 frames, cue points, vendor strings. Any of
those can name the owner, the device or the account, and the file's own sha256 joins the clip to
upstream systems. So the decoded samples are written into one canonical served format, and only
that is stored, hashed (`NewClip.sha256`) and served:

    RIFF/WAVE with exactly two chunks, `fmt ` (WAVE_FORMAT_PCM, 16-bit) and `data`.

Why that format rather than re-encoding each source without tags:
- *Nothing to strip by construction.* The 44 bytes of header are written here field by field
  (`wav_header`); no encoder library gets a chance to add a vendor string, an `ENCODER=` comment,
  a LAME/Xing frame or a `PEAK` chunk, and a test can prove it by parsing two chunks.
- *The client already plays int16.* `annotator.audio.decode` turns every clip into int16 frames
  at the file's rate; quantising here with the same rule (`rint(x * 32768)`, clipped) means an
  annotator hears exactly what they heard before, and 16-bit sources stay bit-identical.
- *Fastest possible decode on the client:* libsndfile reads PCM WAV by copying; no Vorbis/Opus/MP3
  decode (the costliest part of a lease's download-to-play time on a slow laptop) is left:
  `decode()` of the bundled demo clips took 8–29 ms each as Opus and 0.4–1.6 ms as served WAV.
- *No generation loss.* Re-encoding a lossy source (MP3 → MP3) would audibly degrade speech
  that annotators must transcribe word for word.
- *Size:* 32 KB per second at the usual 16 kHz mono, ~190 KB for a typical 6 s request; lossy
  sources grow about tenfold over their Opus/MP3 originals (demo clips: 8–18 KB as Opus,
  98–200 KB served). At ~1,000 clips per shift that is
  ~200 MB per annotator per shift over the network and, encrypted, in the offline cache — well
  within a laptop's means. The prefetcher holds decoded int16 in memory already, so client RAM
  does not change. `MAX_SERVED_BYTES` refuses the absurd (hours of 8-channel 192 kHz) with a fix.

Two files with the same samples but different tags are therefore one clip (a duplicate).

One bad file never stops an ingest: it is reported by name with the reason and the rest go on.
This module is imported by `annotator ingest` and by the demo's embedded server; it must stay free
of Textual and of the `annotator` package.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from api.models import MAX_TRANSCRIPT_CHARS, Locale
from api.server.records import NewClip
from api.text_safety import UNSAFE, escaping_console, for_terminal

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".opus", ".oga", ".mp3"})
MIN_DURATION_S = 0.05
MAX_DURATION_S = 10 * 60.0
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
#: 10 minutes of 96 kHz stereo 24-bit PCM is ~350 MB; anything larger is not a clip we can take,
#: and refusing before reading keeps one stray file from exhausting the server's memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Below this many files a progress bar is only flicker.
PROGRESS_MIN_FILES = 20

#: What every clip is served as (see the module docstring).
SERVED_MEDIA_TYPE = "audio/wav"
#: The served WAV's size limit: 10 minutes of 48 kHz stereo 16-bit is ~110 MiB.
MAX_SERVED_BYTES = 256 * 1024 * 1024
_WAV_HEADER_BYTES = 44
# libsndfile's major formats we accept as input (anything else decodes here but is not a format
# an admin should be feeding us, so it is refused with a fix).
_INPUT_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "FLAC", "OGG", "MP3"})
_DECODE_BLOCK_FRAMES = 16_384
# An MP3 decoder may add or drop up to about two MPEG frames of priming/padding.
_MP3_SLACK_FRAMES = 2 * 1152
# WAV data-chunk sizes that streaming writers leave when they cannot seek back to fill them in.
_WAV_PLACEHOLDER_SIZES = frozenset({0, 0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000})
_LOCALE = TypeAdapter(Locale)
_HINT_JUNK = re.compile(r"[\x00-\x1f\x7f\s]+")


class BadAudio(Exception):
    """A file that cannot become a clip; the message is the reason shown to the admin."""


@dataclass(frozen=True, slots=True)
class VerifiedAudio:
    """A verified recording re-made as the served, tag-free canonical WAV (`audio`)."""

    audio: bytes
    duration_s: float
    sample_rate: int
    channels: int
    media_type: str = SERVED_MEDIA_TYPE


@dataclass(slots=True)
class IngestReport:
    ingested: list[tuple[str, str]] = field(default_factory=list)  # (name, clip_id)
    duplicates: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    #: ASR hint keys that matched no file in this run (usually a typo or a different batch).
    unused_hints: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            _count(len(self.ingested), "clip") + " ingested",
            _count(len(self.duplicates), "duplicate") + " (already queued)",
            _count(len(self.skipped), "file") + " skipped",
        ]
        if self.unused_hints:
            parts.append(_count(len(self.unused_hints), "ASR hint") + " matched no file")
        return ", ".join(parts)

    def print_skipped(self, console: Console | None = None) -> None:
        """Every skipped file with its reason, one a line, on stderr by default."""
        out = console if console is not None else escaping_console(stderr=True)
        for name, reason in self.skipped:
            # A file name is whatever bytes an uploader chose: ESC sequences are drawn, not run.
            line = Text.assemble(("skipped ", "bold red"), for_terminal(f"{name}: {reason}"))
            # One line per file (no hard wrap) keeps the list greppable in logs.
            out.print(line, soft_wrap=True, highlight=False)
        if self.unused_hints:
            out.print(
                "ASR hints for files not in this ingest: "
                + ", ".join(map(for_terminal, self.unused_hints[:10]))
                + (" …" if len(self.unused_hints) > 10 else ""),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- finding files


@dataclass(frozen=True, slots=True)
class _Candidate:
    path: Path
    display: str  # how the admin named it: the argument, or argument/relative/path


def _collect(paths: Sequence[Path], report: IngestReport) -> list[_Candidate]:
    found: list[_Candidate] = []
    for given in paths:
        try:
            found.extend(_expand(given, report))
        except OSError as e:  # e.g. a parent directory without search permission
            report.skipped.append((str(given), f"cannot access: {e.strerror or e}"))
    return found


def _expand(given: Path, report: IngestReport) -> list[_Candidate]:
    display = str(given)
    if given.is_dir():
        return _walk(given, report)
    if given.is_file():
        if given.suffix.lower() in AUDIO_EXTENSIONS:
            return [_Candidate(given, display)]
        expected = " ".join(sorted(AUDIO_EXTENSIONS))
        report.skipped.append((display, f"not an audio file name: expected one of {expected}"))
    elif given.exists() or given.is_symlink():
        report.skipped.append((display, _missing_reason(given)))
    else:
        report.skipped.append((display, "not found: check the path"))
    return []


def _missing_reason(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        return "broken symbolic link"
    if not os.access(path, os.R_OK):
        return "permission denied: make it readable by the user running ingest"
    return "not a regular file or directory"


def _walk(root: Path, report: IngestReport) -> list[_Candidate]:
    def on_error(err: OSError) -> None:
        where = err.filename if err.filename else str(root)
        report.skipped.append((str(where), f"cannot list directory: {err.strerror or err}"))

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
        # Hidden entries are editor/OS droppings (macOS writes "._name.wav" resource forks).
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(
            Path(dirpath) / name
            for name in filenames
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS
        )
    # Sorted like `find | sort`, so two runs over the same tree queue clips in the same order.
    return [
        _Candidate(path, str(path))
        for path in sorted(found, key=lambda p: p.relative_to(root).parts)
    ]


# ---------------------------------------------------------------- verifying one file


def verify_audio(data: bytes) -> VerifiedAudio:
    """Decode `data` completely, check it is a usable clip and re-make it as the served WAV.

    Raises `BadAudio` with the reason. Nothing of `data` but its samples survives.
    """
    if not data:
        raise BadAudio("empty: the file has 0 bytes")
    if data[:4] == b"OggS" and (cut := _ogg_cut_at(data)) is not None:
        raise BadAudio(f"truncated: the Ogg stream breaks off at byte {cut} of {len(data)}")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.SoundFileError, RuntimeError, ValueError) as e:
        raise BadAudio(
            "undecodable: not a readable WAV, FLAC, OGG or MP3 file "
            f"(libsndfile: {_libsndfile_message(e)})"
        ) from None
    if info.format not in _INPUT_FORMATS:
        raise BadAudio(
            f"unsupported format {info.format} ({info.format_info}): convert it to WAV, FLAC, "
            "OGG (Vorbis/Opus) or MP3"
        )
    rate, channels = int(info.samplerate), int(info.channels)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise BadAudio(
            f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz: resample it"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise BadAudio(f"{channels} channels (at most {MAX_CHANNELS}): downmix it")
    claimed = int(info.frames)
    if _WAV_HEADER_BYTES + claimed * channels * 2 > MAX_SERVED_BYTES and claimed < (1 << 62):
        raise BadAudio(_too_large_served(claimed, channels))
    pcm = bytearray(_WAV_HEADER_BYTES)  # the header is filled in once the length is known
    decoded = _decode_all(data, rate, channels, claimed, pcm)
    if decoded < MIN_DURATION_S * rate:
        if len(data) > 4096:
            raise BadAudio(
                f"empty: no audio decoded from {len(data)} bytes (truncated or corrupt?)"
            )
        raise BadAudio(
            f"empty: {decoded / rate:.3f} s of audio (needs at least {MIN_DURATION_S} s)"
        )
    _check_claims(info.format, data, decoded, claimed, rate, channels)
    pcm[:_WAV_HEADER_BYTES] = wav_header(len(pcm) - _WAV_HEADER_BYTES, rate, channels)
    return VerifiedAudio(bytes(pcm), decoded / rate, rate, channels)


def wav_header(data_bytes: int, rate: int, channels: int) -> bytes:
    """The 44-byte header of a 16-bit PCM RIFF/WAVE holding `data_bytes` of samples: `fmt `+`data`.

    Plain WAVE_FORMAT_PCM even above two channels (libsndfile, and so every client, reads it; the
    EXTENSIBLE form would only add a speaker mask we do not know).
    """
    block_align = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, 16)
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes),
            b"WAVE",
            b"fmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"data",
            struct.pack("<I", data_bytes),
        )
    )


def _to_int16(block: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    # The client's own rule (annotator.audio.decode._to_int16): libsndfile maps int16 to float by
    # /32768, so 16-bit sources round-trip exactly and others sound as they did before.
    out: npt.NDArray[np.int16] = np.clip(np.rint(block * 32768.0), -32768, 32767).astype("<i2")
    return out


def _too_large_served(frames: int, channels: int) -> str:
    mib = (_WAV_HEADER_BYTES + frames * channels * 2) / 2**20
    return (
        f"too large to serve: {mib:.0f} MiB as 16-bit PCM (at most {MAX_SERVED_BYTES // 2**20} "
        "MiB): downmix it to mono or stereo, or split it"
    )


def _decode_all(data: bytes, rate: int, channels: int, claimed: int, pcm: bytearray) -> int:
    """Frames that actually decode, appended to `pcm` as int16 (reading past a too-long clip is
    pointless, so we stop there)."""
    limit = int(MAX_DURATION_S * rate)
    # A preallocated block makes soundfile read until libsndfile runs dry rather than stop at the
    # header's frame count, so a header that claims more than the file holds is caught below.
    decoded = 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            # libsndfile 1.2's MP3 decoder garbles samples after the first of several reads (a
            # 0.3 jump at each block boundary), so an MP3 is read in one go; np.empty costs no
            # memory until the decoder writes into it.
            frames = limit + 1 if f.format == "MP3" else _DECODE_BLOCK_FRAMES
            block = np.empty((frames, channels), dtype=np.float32)
            while True:
                got = f.read(out=block, dtype="float32", always_2d=True)
                n = len(got)
                finite = np.isfinite(got).all(axis=1)
                if not finite.all():
                    at = decoded + int(np.argmin(finite))
                    raise BadAudio(
                        f"corrupt: NaN or infinite samples at {at / rate:.2f} s "
                        "(a float file with invalid values)"
                    )
                decoded += n
                if decoded > limit:
                    raise BadAudio(_too_long(max(claimed, decoded) / rate))
                if len(pcm) + n * channels * 2 > MAX_SERVED_BYTES:
                    raise BadAudio(_too_large_served(decoded, channels))
                pcm += _to_int16(got).tobytes()
                if n < len(block):
                    return decoded
    except (sf.SoundFileError, RuntimeError, ValueError) as e:
        where = f"after {decoded / rate:.2f} s"
        if claimed > decoded:
            raise BadAudio(
                f"truncated: decoding failed {where} of the {claimed / rate:.2f} s the header "
                f"claims ({_libsndfile_message(e)})"
            ) from None
        raise BadAudio(f"undecodable: {_libsndfile_message(e)} ({where})") from None


def _too_long(seconds: float) -> str:
    return (
        f"too long: {seconds / 60:.1f} min (at most {MAX_DURATION_S / 60:.0f} min): "
        "split it into shorter clips"
    )


def _check_claims(fmt: str, data: bytes, decoded: int, claimed: int, rate: int, ch: int) -> None:
    # WAV, FLAC and OGG headers state exact lengths; an MP3's is often an estimate.
    tolerance = max(2, int(0.02 * rate))
    if fmt == "MP3":
        tolerance += _MP3_SLACK_FRAMES + claimed // 100
    if fmt in ("WAV", "WAVEX"):
        # libsndfile quietly clamps a WAV's data chunk to the bytes present, so its frame count
        # agrees with the decode even when the file was cut short; read the header ourselves.
        shortfall = _wav_shortfall_frames(data)
        if shortfall is not None and shortfall > tolerance:
            raise BadAudio(
                f"truncated: the header declares {(decoded + shortfall) / rate:.2f} s of audio "
                f"but the file holds {decoded / rate:.2f} s"
            )
    if decoded + tolerance < claimed:
        raise BadAudio(
            f"truncated: the header claims {claimed / rate:.2f} s but only "
            f"{decoded / rate:.2f} s decodes"
        )
    if decoded > claimed + tolerance and claimed > 0:
        raise BadAudio(
            f"header lies: it claims {claimed / rate:.2f} s but {decoded / rate:.2f} s decodes; "
            "re-encode the file"
        )


def _wav_shortfall_frames(data: bytes) -> int | None:
    """How many frames a RIFF/WAVE file's data chunk declares beyond the bytes present.

    None when the file is not plain RIFF or the size is a streaming placeholder.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, block_align = 12, 0
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt " and body + 14 <= len(data):
            block_align = int.from_bytes(data[body + 12 : body + 14], "little")
        elif chunk_id == b"data":
            if size in _WAV_PLACEHOLDER_SIZES or block_align <= 0:
                return None
            missing = size - (len(data) - body)
            return max(0, missing) // block_align
        pos = body + size + (size & 1)
    return None


def _ogg_cut_at(data: bytes) -> int | None:
    """Where an Ogg stream's last page breaks off, or None when every page is whole.

    An Ogg file's length comes from its last complete page, so a cut-short file looks whole to
    libsndfile; a partial trailing page is the evidence.
    """
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS" or pos + 27 > len(data):
            return pos
        segments = data[pos + 26]
        table_end = pos + 27 + segments
        if table_end > len(data):
            return pos
        end = table_end + sum(data[pos + 27 : table_end])
        if end > len(data):
            return pos
        pos = end
    return None


def _libsndfile_message(e: Exception) -> str:
    # soundfile's str() embeds the BytesIO repr; libsndfile's own words are what helps the admin.
    text = getattr(e, "error_string", None) or str(e)
    return str(text).strip().rstrip(".") or type(e).__name__


# ---------------------------------------------------------------- the run


def ingest_paths(
    paths: Sequence[Path],
    *,
    locale: str,
    asr_hints: Mapping[str, str],
    add_clip: Callable[[NewClip], str | None],
    progress: bool = False,
    console: Console | None = None,
) -> IngestReport:
    """Verify and queue every audio file under `paths`.

    Directories are walked recursively in sorted order (hidden entries and non-audio names are
    ignored); a non-audio file named explicitly is reported. `add_clip` returns the new clip id,
    or None when that sha256 is already queued. Raises ValueError only for a bad `locale`; errors
    raised by `add_clip` (storage failures) propagate, since they are not about one file.
    """
    try:
        _LOCALE.validate_python(locale)
    except ValidationError:
        raise ValueError(
            f"invalid locale {locale!r}: use a BCP 47 tag such as en-US or de-DE"
        ) from None
    report = IngestReport()
    candidates = _collect(paths, report)
    hints = {name: text for name, raw in asr_hints.items() if (text := _clean_hint(raw))}
    seen: set[str] = set()
    show = progress and len(candidates) > PROGRESS_MIN_FILES
    with _Progress(show, len(candidates), console) as advance:
        for cand in candidates:
            _ingest_one(cand, locale, hints, add_clip, seen, report)
            advance()
    report.unused_hints = sorted(set(hints) - {c.path.name for c in candidates})
    return report


def _ingest_one(
    cand: _Candidate,
    locale: str,
    hints: Mapping[str, str],
    add_clip: Callable[[NewClip], str | None],
    seen: set[str],
    report: IngestReport,
) -> None:
    try:
        audio = verify_audio(_read_bytes(cand.path))
    except BadAudio as e:
        report.skipped.append((cand.display, str(e)))
        return
    # Of the served bytes, never the original file's: that hash would join to upstream systems.
    digest = hashlib.sha256(audio.audio).hexdigest()
    name = cand.path.name
    if digest in seen:
        report.duplicates.append(cand.display)
        return
    seen.add(digest)
    clip_id = add_clip(
        NewClip(
            sha256=digest,
            audio=audio.audio,
            media_type=audio.media_type,
            duration_s=audio.duration_s,
            sample_rate=audio.sample_rate,
            channels=audio.channels,
            locale=locale,
            source_name=name,
            asr_hint=hints.get(name),
        )
    )
    if clip_id is None:
        report.duplicates.append(cand.display)
    else:
        report.ingested.append((cand.display, clip_id))


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BadAudio(
                f"too large: {size / 2**20:.0f} MiB (at most {MAX_FILE_BYTES // 2**20} MiB): "
                "split or compress it"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise BadAudio("not found (removed during ingest?)") from None
    except PermissionError:
        raise BadAudio("permission denied: make it readable by the user running ingest") from None
    except IsADirectoryError:
        raise BadAudio("is a directory, not a file") from None
    except OSError as e:
        raise BadAudio(f"unreadable: {e.strerror or e}") from None


class _Progress:
    """A rich progress bar on stderr, or nothing; used as `with _Progress(...) as advance`."""

    def __init__(self, enabled: bool, total: int, console: Console | None) -> None:
        self._bar: Progress | None = None
        if enabled:
            self._bar = Progress(
                TextColumn("ingesting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console if console is not None else escaping_console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task("ingest", total=total)

    def __enter__(self) -> Callable[[], None]:
        if self._bar is None:
            return lambda: None
        bar, task = self._bar, self._task
        bar.start()
        return lambda: bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------- ASR hints


def _clean_hint(raw: str) -> str | None:
    # A hint prefills a one-line transcript: control characters, newlines and runs of blanks would
    # only be flagged by the transcript lint, so they are folded to single spaces here; bidi and
    # zero-width characters (refused in a transcript, and able to reorder what the annotator
    # reads) are dropped.
    text = UNSAFE.sub("", _HINT_JUNK.sub(" ", raw)).strip()[:MAX_TRANSCRIPT_CHARS].rstrip()
    return text or None


def load_asr_hints(path: Path) -> dict[str, str]:
    """Read `file -> ASR hypothesis` from JSONL (`{"file": ..., "asr_hint": ...}`) or TSV
    (`file<TAB>hint`; an optional `file<TAB>asr_hint` header). Blank lines are ignored.

    Keys are file base names. Raises ValueError naming the file and line for anything malformed.
    """
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read ASR hints: {e.strerror or e}") from None
    hints: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.lstrip()[:1] in ("{", "[", '"'):
            name, hint = _jsonl_hint(line, path, lineno)
        else:
            if lineno == 1 and line.strip().lower() in ("file\tasr_hint", "file\thint"):
                continue
            name, hint = _tsv_hint(line, path, lineno)
        name = Path(name).name
        if name in first_line and hints[name] != hint:
            raise ValueError(
                f"{path}:{lineno}: {name!r} already has a different hint on line "
                f"{first_line[name]}: keep one"
            )
        first_line.setdefault(name, lineno)
        hints[name] = hint
    return hints


def _jsonl_hint(line: str, path: Path, lineno: int) -> tuple[str, str]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}:{lineno}: expected a JSON object with file and asr_hint")
    name, hint = obj.get("file"), obj.get("asr_hint")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f'{path}:{lineno}: "file" must be a non-empty string')
    if not isinstance(hint, str):
        raise ValueError(f'{path}:{lineno}: "asr_hint" must be a string')
    return name.strip(), hint


def _tsv_hint(line: str, path: Path, lineno: int) -> tuple[str, str]:
    name, tab, hint = line.partition("\t")
    if not tab:
        raise ValueError(
            f"{path}:{lineno}: expected 'file<TAB>hint' or a JSON object, found no tab"
        )
    if not name.strip():
        raise ValueError(f"{path}:{lineno}: the file name before the tab is empty")
    return name.strip(), hint
