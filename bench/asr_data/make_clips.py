"""Make the ASR bench's labelled clips with espeak-ng and sox: synthetic speech, known words.

    .venv/bin/python bench/asr_data/make_clips.py

Each request is spoken by one of several espeak-ng voices at its own rate and pitch, then stored
at its own sample rate, channel count and container (WAV, FLAC, OGG Vorbis, MP3), so the drafts
are measured across what ingest accepts. Two clips hold no speech (noise, a near-silence hum).
`labels.jsonl` holds each clip's true transcript (house style: lower case, numbers in words, no
punctuation) and intent. The phrasings were written for this set alone: none is an example in
api/taxonomy_default.json or a template of bench/asr_data/corpus.py, so the intent figures are
measured on text the scorers never saw. Re-runnable; needs /usr/bin/espeak-ng and sox.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
CLIPS = HERE / "clips"
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us+f3", "en-029", "en-gb-x-gbclan"]
RATES = [145, 160, 175, 185]
FORMATS = [  # (extension, soundfile format, subtype, sample rate, channels)
    (".wav", "WAV", "PCM_16", 16_000, 1),
    (".flac", "FLAC", "PCM_16", 22_050, 1),
    (".ogg", "OGG", "VORBIS", 48_000, 2),
    (".mp3", "MP3", "MPEG_LAYER_III", 44_100, 1),
    (".wav", "WAV", "PCM_16", 8_000, 1),
    (".ogg", "OGG", "VORBIS", 16_000, 1),
]

REQUESTS = [
    ("wake me at half past six on saturday", "alarm_set"),
    ("is my alarm for tomorrow still on", "alarm_query"),
    ("switch off the alarm i set for monday", "alarm_remove"),
    ("could you make it a bit quieter", "audio_volume_down"),
    ("pump up the volume", "audio_volume_up"),
    ("what have i got on next wednesday", "calendar_query"),
    ("remind me to water the plants this evening", "calendar_set"),
    ("cancel the team meeting on friday morning", "calendar_remove"),
    ("how long should i bake potatoes for", "cooking_query"),
    ("show me how to make a simple tomato soup", "cooking_recipe"),
    ("tell me today's date please", "datetime_query"),
    ("send an email to david saying thanks for the lunch", "email_sendemail"),
    ("have i received any emails from the bank", "email_query"),
    ("what is lucy's mobile number", "email_querycontact"),
    ("good evening how is your day going", "general_greet"),
    ("tell me something funny about cats", "general_joke"),
    ("turn on the hoover in the hallway", "iot_cleaning"),
    ("can you brew me a strong black coffee", "iot_coffee"),
    ("make the living room lights green", "iot_hue_lightchange"),
    ("turn the kitchen lights down a little", "iot_hue_lightdim"),
    ("switch the hallway lights off please", "iot_hue_lightoff"),
    ("put the lights on in the bathroom", "iot_hue_lighton"),
    ("add bananas and bread to the shopping list", "lists_createoradd"),
    ("what do i still need to buy", "lists_query"),
    ("i really like this tune", "music_likeness"),
    ("who is the singer of this song", "music_query"),
    ("what are today's top stories", "news_query"),
    ("play some rock music from the eighties", "play_music"),
    ("put on classic fm", "play_radio"),
    ("continue my book from where i stopped", "play_audiobook"),
    ("how many euros will i get for a hundred dollars", "qa_currency"),
    ("what does the word ubiquitous mean", "qa_definition"),
    ("who wrote pride and prejudice", "qa_factoid"),
    ("what is seven multiplied by nine", "qa_maths"),
    ("how are microsoft shares doing today", "qa_stock"),
    ("is there a good italian restaurant nearby", "recommendation_locations"),
    ("what film should i watch with the kids", "recommendation_movies"),
    ("order a chicken tikka masala for delivery", "takeaway_order"),
    ("when does the next bus to the town centre leave", "transport_query"),
    ("get me a cab to the train station", "transport_taxi"),
    ("is the traffic bad on the ring road", "transport_traffic"),
    ("is it going to snow on thursday", "weather_query"),
    ("book two tickets on the train to edinburgh", "transport_ticket"),
    ("shuffle the songs in this playlist", "music_settings"),
    ("no i was talking to my sister", "not_device_directed"),
]
NO_SPEECH = [("noise", 0.02), ("hum", 0.004)]  # (kind, amplitude)


def speak(text: str, voice: str, rate: int, pitch: int, tmp: Path) -> tuple[np.ndarray, int]:
    out = tmp / "say.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(out), text],
        check=True,
    )
    data, sr = sf.read(out, dtype="float32")
    return data * 0.8, sr


def resample(data: np.ndarray, sr: int, target: int, tmp: Path) -> np.ndarray:
    if sr == target:
        return data
    src, dst = tmp / "in.wav", tmp / "out.wav"
    sf.write(src, data, sr, subtype="FLOAT")
    subprocess.run(["sox", "-V1", str(src), "-r", str(target), str(dst)], check=True)
    out, _ = sf.read(dst, dtype="float32")
    return np.asarray(out, dtype=np.float32)


def main() -> int:
    CLIPS.mkdir(exist_ok=True)
    for old in CLIPS.iterdir():
        old.unlink()
    rng = np.random.default_rng(13)
    labels = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for i, (text, intent) in enumerate(REQUESTS):
            voice, rate = VOICES[i % len(VOICES)], RATES[(i // 2) % len(RATES)]
            ext, fmt, subtype, target, channels = FORMATS[i % len(FORMATS)]
            pitch = 35 + (i * 7) % 30
            data, sr = speak(text, voice, rate, pitch, tmp)
            data = resample(data, sr, target, tmp)
            pad = np.zeros(int(0.3 * target), dtype=np.float32)
            data = np.concatenate([pad, data, pad])
            data = data + rng.normal(0, 0.002, len(data)).astype(np.float32)  # a quiet room
            if channels == 2:
                data = np.stack([data, data * 0.9], axis=1)
            name = f"{i:02d}_{intent}{ext}"
            sf.write(CLIPS / name, data, target, format=fmt, subtype=subtype)
            labels.append(
                {
                    "file": name,
                    "text": text,
                    "intent": intent,
                    "voice": voice,
                    "rate": rate,
                    "sample_rate": target,
                    "channels": channels,
                }
            )
        for j, (kind, amp) in enumerate(NO_SPEECH):
            n = 3 * 16_000
            if kind == "noise":
                data = rng.normal(0, amp, n).astype(np.float32)
            else:
                data = (amp * np.sin(2 * np.pi * 50 * np.arange(n) / 16_000)).astype(np.float32)
            name = f"{len(REQUESTS) + j:02d}_no_speech_{kind}.flac"
            sf.write(CLIPS / name, data, 16_000, format="FLAC", subtype="PCM_16")
            labels.append(
                {
                    "file": name,
                    "text": "",
                    "intent": "no_speech",
                    "voice": kind,
                    "rate": 0,
                    "sample_rate": 16_000,
                    "channels": 1,
                }
            )
    with open(HERE / "labels.jsonl", "w") as f:
        for row in labels:
            f.write(json.dumps(row) + "\n")
    print(f"{len(labels)} clips in {CLIPS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
