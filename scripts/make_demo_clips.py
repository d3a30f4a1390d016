"""Synthesise the bundled demo clips (annotator/demo_clips/) with espeak-ng and sox.

    .venv/bin/python scripts/make_demo_clips.py [--out DIR] [--drafts-only]

`--drafts-only` keeps the audio and re-makes the drafts (after an engine or house-style change).

Each clip is a short assistant request spoken by a different espeak-ng voice, speed and pitch,
some with background noise, resampled to 16 kHz mono and saved mostly as OGG Opus (small), with
one WAV, one FLAC, one MP3 and one OGG Vorbis so every decoder path is exercised. The manifest
records what was said, the intended intent and flags (an answer key for practice), and each
clip's machine draft from the real engine (`api.server.asr`: faster-whisper tiny.en, the same
one `annotator ingest` uses) with its per-word confidence, so the demo shows real drafts, marked
as machine drafts, with their low-confidence words underlined.

Re-runnable: it rewrites the clips and the manifest and removes audio the manifest no longer
lists. Needs /usr/bin/espeak-ng and sox (`make system-deps` installs both) and the asr extra.
The names in the clips are invented first names and the phone numbers are in the fictional
555-01xx range.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "annotator" / "demo_clips"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".oga", ".mp3"}

# extension -> (soundfile format, subtype)
CONTAINERS = {
    ".opus": ("OGG", "OPUS"),
    ".ogg": ("OGG", "VORBIS"),
    ".flac": ("FLAC", "PCM_16"),
    ".wav": ("WAV", "PCM_16"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


@dataclass(frozen=True)
class Say:
    """One stretch of synthetic speech."""

    text: str
    voice: str = "en-us"
    speed: int = 160  # words per minute
    pitch: int = 50  # 0-99


@dataclass(frozen=True)
class Spec:
    stem: str
    intent: str
    speech: tuple[Say, ...]
    locale: str = "en-US"
    ext: str = ".opus"
    flags: tuple[str, ...] = ()
    noise_db: float | None = None  # background noise level relative to full scale
    gain_db: float = -3.0  # speech peak level
    reverb: bool = False  # far-field: speech from across the room

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.speech)


def us(text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50) -> tuple[Say, ...]:
    return (Say(text, voice, speed, pitch),)


def gb(text: str, voice: str = "en-gb", speed: int = 160, pitch: int = 50) -> tuple[Say, ...]:
    return (Say(text, voice, speed, pitch),)


CLIPS: tuple[Spec, ...] = (
    Spec(
        "alarm_seven_thirty",
        "alarm_set",
        us("set an alarm for seven thirty tomorrow morning", "en-us+f3", 165, 60),
    ),
    Spec(
        "weather_leeds_weekend",
        "weather_query",
        gb("what's the weather going to be like in Leeds this weekend", "en-gb+m3", 150, 40),
        locale="en-GB",
    ),
    Spec(
        "play_jazz_kitchen",
        "play_music",
        us("play some jazz in the kitchen", "en-us+m7", 170, 35),
        noise_db=-42,
    ),
    Spec(
        "lights_off_living_room",
        "iot_hue_lightoff",
        us("turn off the lights in the living room", "en-us-nyc+f4", 180, 65),
        ext=".wav",
    ),
    Spec(
        "meetings_thursday",
        "calendar_query",
        gb("what meetings do I have on Thursday afternoon", "en-gb-x-rp+f2", 155, 55),
        locale="en-GB",
        ext=".flac",
    ),
    Spec(
        "order_pizza",
        "takeaway_order",
        us("order a large pepperoni pizza from the place on Main Street", "en-us+m3", 175, 45),
        noise_db=-38,
    ),
    Spec(
        "everest_height",
        "qa_factoid",
        gb("how tall is Mount Everest", "en-gb-scotland", 150, 50),
        locale="en-GB",
    ),
    Spec(
        "taxi_airport",
        "transport_taxi",
        us("book me a taxi to the airport for six a m", "en-us+f5", 160, 70),
        ext=".mp3",
    ),
    Spec(
        "joke_penguins",
        "general_joke",
        us("tell me a joke about penguins", "en-us+f1", 150, 60),
    ),
    Spec(
        "headlines_today",
        "news_query",
        gb("what are today's top headlines", "en-gb-x-gbclan+m2", 165, 45),
        locale="en-GB",
        ext=".ogg",
    ),
    Spec(
        "shopping_list_oat_milk",
        "lists_createoradd",
        us("add oat milk and bananas to my shopping list", "en-us+m2", 155, 40),
    ),
    Spec(
        "email_marco_late",
        "email_sendemail",
        gb("send an email to Marco saying I'll be ten minutes late", "en-gb+f3", 170, 60),
        locale="en-GB",
        flags=("pii",),
    ),
    Spec(
        "banana_bread",
        "cooking_recipe",
        us("how do I make banana bread", "en-us+f2", 145, 55),
        noise_db=-40,
    ),
    Spec(
        "time_in_tokyo",
        "datetime_query",
        us("what time is it in Tokyo right now", "en-us+m5", 160, 30),
    ),
    Spec(
        "volume_up",
        "audio_volume_up",
        gb("turn it up a bit", "en-gb+m4", 185, 50),
        locale="en-GB",
        noise_db=-34,
    ),
    Spec(
        "feed_the_cat",
        "not_device_directed",
        (
            Say("did you feed the cat", "en-us+f4", 175, 65),
            Say("yeah this morning, she's still hungry though", "en-us+m6", 165, 35),
        ),
        noise_db=-40,
        gain_db=-14,
        reverb=True,
    ),
    Spec("room_noise", "no_speech", (), noise_db=-36),
    Spec(
        "alarm_when",
        "alarm_query",
        gb("what time is my alarm set for", "en-gb-x-rp+m1", 150, 45),
        locale="en-GB",
    ),
    Spec(
        "dim_bedroom",
        "iot_hue_lightdim",
        us("dim the bedroom lights to twenty percent", "en-us+f3", 155, 50),
    ),
    Spec(
        "who_sings_this",
        "music_query",
        us("who sings this song", "en-us+m3", 170, 55),
        noise_db=-30,
    ),
    Spec(
        "euros_dollars",
        "qa_currency",
        gb("how many euros is fifty dollars", "en-gb+f5", 160, 60),
        locale="en-GB",
    ),
    Spec(
        "train_cambridge",
        "transport_query",
        gb("when is the next train to Cambridge", "en-gb-scotland+f2", 155, 55),
        locale="en-GB",
    ),
    Spec(
        "remind_call_priya",
        "calendar_set",
        us(
            "remind me to call Priya back on five five five, zero one four two",
            "en-us+m4",
            150,
            45,
        ),
        flags=("pii",),
    ),
    Spec(
        "fifteen_percent",
        "qa_maths",
        us("what is fifteen percent of eighty", "en-us+f5", 165, 65),
    ),
    Spec(
        "science_podcast",
        "play_podcasts",
        gb("play the latest episode of my science podcast", "en-gb+m7", 160, 40),
        locale="en-GB",
    ),
    Spec(
        "funny_movie",
        "recommendation_movies",
        us("recommend a funny movie for tonight", "en-us-nyc+m2", 175, 50),
    ),
    Spec(
        "coffee",
        "iot_coffee",
        gb("make me a cup of coffee please", "en-gb-x-gbclan+f1", 150, 55),
        locale="en-GB",
        noise_db=-44,
    ),
    Spec(
        "add_contact_jonah",
        "email_addcontact",
        us("add Jonah's number, five five five, zero one nine eight, to my contacts", "en-us"),
        flags=("pii",),
    ),
    Spec(
        "good_morning",
        "general_greet",
        us("good morning, how are you today", "en-us+f2", 140, 75),
    ),
    Spec(
        "ephemeral_meaning",
        "qa_definition",
        gb("what does ephemeral mean", "en-gb-x-rp", 150, 50),
        locale="en-GB",
    ),
)


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def speak(say: Say, tmp: Path) -> np.ndarray:
    """espeak-ng speaks at 22.05 kHz; sox resamples to 16 kHz with its high-quality filter."""
    raw, resampled = tmp / "raw.wav", tmp / "16k.wav"
    run(["espeak-ng", "-v", say.voice, "-s", str(say.speed), "-p", str(say.pitch), "-w", str(raw),
         say.text])  # fmt: skip
    run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(resampled), "rate", "-h"])
    samples, rate = sf.read(resampled, dtype="float32")
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


def far_field(samples: np.ndarray, tmp: Path) -> np.ndarray:
    """Speech from across the room: sox reverb, a little high-frequency loss."""
    src, dst = tmp / "dry.wav", tmp / "wet.wav"
    sf.write(src, samples, RATE, subtype="FLOAT")
    run(["sox", str(src), str(dst), "reverb", "45", "50", "70", "lowpass", "3800"])
    wet, _ = sf.read(dst, dtype="float32")
    return np.asarray(wet, dtype=np.float32)


def room_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Brownish noise (a fan, a fridge): white noise through a leaky integrator, unit RMS."""
    white = rng.standard_normal(n).astype(np.float64)
    out = np.empty(n)
    acc = 0.0
    for i, w in enumerate(white):  # n is a few tens of thousands: fast enough
        acc = 0.97 * acc + w
        out[i] = acc
    out -= out.mean()
    rms = float(np.sqrt(np.mean(out**2)))
    return (out / (rms + 1e-12)).astype(np.float32)


def from_db(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def render(spec: Spec, index: int, tmp: Path) -> np.ndarray:
    rng = np.random.default_rng(1000 + index)
    gap = np.zeros(int(0.35 * RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    for say in spec.speech:
        if parts:
            parts.append(gap)
        parts.append(speak(say, tmp))
    speech = np.concatenate(parts) if parts else np.zeros(int(2.5 * RATE), dtype=np.float32)
    if spec.speech:
        speech = speech / (np.abs(speech).max() + 1e-12) * from_db(spec.gain_db)
    if spec.reverb:
        speech = far_field(speech, tmp)
    lead = np.zeros(int(rng.uniform(0.2, 0.6) * RATE), dtype=np.float32)
    tail = np.zeros(int(rng.uniform(0.3, 0.7) * RATE), dtype=np.float32)
    clip = np.concatenate([lead, speech, tail])
    if spec.noise_db is not None:
        clip = clip + room_noise(len(clip), rng) * from_db(spec.noise_db)
    clipped: np.ndarray = np.clip(clip, -1.0, 1.0).astype(np.float32)
    return clipped


def draft(out: Path, manifest: list[dict[str, object]]) -> None:
    """Give each manifest entry its clip's draft from the default engine, as ingest stores it:
    `asr_hint` (the words joined by spaces; "" when it heard nothing) and `asr_words`
    ([word, confidence] pairs)."""
    from api.server.asr.whisper import WhisperEngine

    engine = WhisperEngine(workers=1, threads=0)
    for entry in manifest:
        made = engine.transcribe(engine.decode((out / str(entry["file"])).read_bytes()))
        entry["asr_hint"] = made.text
        entry["asr_words"] = [[w.word, w.confidence] for w in made.words]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--drafts-only", action="store_true", help="keep the audio; re-make the drafts"
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    try:
        from api.server.asr.model import model_dir, verify_model

        verify_model(model_dir())
    except Exception as e:  # noqa: BLE001 - AsrUnavailable, or the package missing entirely
        print(f"the drafts need the ASR engine: {e}", file=sys.stderr)
        return 1
    if args.drafts_only:
        manifest = json.loads((out / "manifest.json").read_text("utf-8"))
        draft(out, manifest)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        print(f"re-drafted {len(manifest)} clips in {out}")
        return 0
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        print(f"needs {' and '.join(missing)}: apt-get install espeak-ng sox", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for index, spec in enumerate(CLIPS):
            name = spec.stem + spec.ext
            fmt, subtype = CONTAINERS[spec.ext]
            sf.write(out / name, render(spec, index, tmp), RATE, format=fmt, subtype=subtype)
            entry: dict[str, object] = {
                "file": name,
                "text": spec.text,
                "intent": spec.intent,
                "flags": list(spec.flags),
                "locale": spec.locale,
            }
            manifest.append(entry)
    draft(out, manifest)
    keep = {str(e["file"]) for e in manifest}
    for stale in out.iterdir():
        if stale.suffix.lower() in AUDIO_SUFFIXES and stale.name not in keep:
            stale.unlink()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    total = sum((out / n).stat().st_size for n in keep)
    print(f"wrote {len(manifest)} clips ({total / 1024:.0f} KiB) and manifest.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
