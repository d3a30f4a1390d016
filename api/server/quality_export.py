"""Exports of final annotations (issue 12) that other tools read: JSONL, a Hugging Face
`audiofolder` directory, Label Studio's task import JSON.

What never leaves: a customer identifier (no source name, no person's name, no metadata: the clip
id is the opaque one), audio that retention deleted (the audio store no longer has it), and the
audio of a clip under escalation (any of its annotations raised one; only the text formats carry
such a clip, without audio). Every file is written through `api.private_file.private_output`
(0600, renamed into place, never through a symlink).

Formats:
- `jsonl`: one `final_record` a line.
- `hf-audiofolder`: DIR/metadata.jsonl (`file_name` + the final's fields) and DIR/<clip>.wav, the
  served canonical audio: `datasets.load_dataset("audiofolder", data_dir=DIR)` reads it.
- `label-studio`: DIR/tasks.json, a list of tasks `{"data": {"audio": "audio/<clip>.wav", ...},
  "annotations": [{"result": [textarea transcription, choices intent, choices flags]}]}` (Label
  Studio's documented task format, for a labeling config with `<Audio name="audio"
  value="$audio"/>`, `<TextArea name="transcription" toName="audio"/>`, `<Choices
  name="intent" toName="audio"/>` and `<Choices name="flags" toName="audio"
  choice="multiple"/>`, each with a `<Choice>` per intent and flag: `label_studio_config`), and
  DIR/audio/<clip>.wav.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from api.private_file import private_output
from api.server.quality_store import AUTO, FinalRow, QualityStore
from api.taxonomy import load_default_taxonomy

FORMATS = ("jsonl", "hf-audiofolder", "label-studio")


def label_studio_config(intents: Iterable[str], flags: Iterable[str]) -> str:
    """The labeling config the tasks are for. Label Studio draws a `<Choices>` tag's `<Choice>`
    children (an empty one offers nothing to pick), so every intent and flag is listed."""

    def choices(name: str, kind: str, values: Iterable[str]) -> str:
        children = "".join(f"\n    <Choice value={quoteattr(v)}/>" for v in values)
        return f'  <Choices name="{name}" toName="audio" choice="{kind}">{children}\n  </Choices>\n'

    return (
        "<View>\n"
        '  <Audio name="audio" value="$audio"/>\n'
        '  <TextArea name="transcription" toName="audio" editable="true"/>\n'
        + choices("intent", "single", intents)
        + choices("flags", "multiple", flags)
        + "</View>\n"
    )


def _with_taxonomy(seen: Iterable[str], known: Iterable[str]) -> list[str]:
    """The default taxonomy's ids, then any other the finals hold (a deployment's own)."""
    return list(dict.fromkeys([*known, *sorted(set(seen))]))


Progress = Callable[[int], None]


@dataclass
class ExportCount:
    written: int = 0
    without_audio: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.without_audio[why] = self.without_audio.get(why, 0) + 1


def decision(row: FinalRow) -> str:
    """How the final was reached, without naming anyone: agreed, reviewed."""
    return "agreed" if row.decided_by == AUTO else "reviewed"


def final_record(row: FinalRow) -> dict[str, Any]:
    return {
        "clip_id": row.clip_id,
        "locale": row.locale,
        "duration_s": row.duration_s,
        "transcription": row.transcript,
        "intent": row.intent,
        "flags": row.flags,
        "decision": decision(row),
        "annotations": len(row.from_annotations),
    }


def audio_name(row: FinalRow) -> str:
    return f"{row.clip_id}.wav"


def with_audio(
    store: QualityStore, rows: Iterable[FinalRow], count: ExportCount
) -> Iterator[tuple[FinalRow, bytes]]:
    for row in rows:
        if row.escalated:
            count.skip("escalated")
            continue
        data = store.read_audio(row.sha256)
        if data is None:
            count.skip("audio deleted")
            continue
        yield row, data


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_symlink():
        raise OSError(f"{path} is a symbolic link: choose another directory")


def _write(path: Path, data: bytes) -> None:
    with private_output(path) as f:
        f.write(data)


def export_jsonl(store: QualityStore, sink: Any, progress: Progress) -> ExportCount:
    count = ExportCount()
    for row in store.finals():
        sink.write(json.dumps(final_record(row), ensure_ascii=False).encode() + b"\n")
        count.written += 1
        progress(1)
    return count


def export_hf_audiofolder(store: QualityStore, out: Path, progress: Progress) -> ExportCount:
    _private_dir(out)
    count = ExportCount()
    lines: list[bytes] = []
    for row, data in with_audio(store, store.finals(), count):
        _write(out / audio_name(row), data)
        lines.append(
            json.dumps(
                {"file_name": audio_name(row), **final_record(row)}, ensure_ascii=False
            ).encode()
            + b"\n"
        )
        count.written += 1
        progress(1)
    with private_output(out / "metadata.jsonl") as f:
        f.writelines(lines)
    return count


def label_studio_task(row: FinalRow, audio_path: str) -> dict[str, Any]:
    def result(name: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"{name}-{row.clip_id}"[:64],
            "from_name": name,
            "to_name": "audio",
            "type": kind,
            "value": value,
        }

    results = [
        result("transcription", "textarea", {"text": [row.transcript]}),
        result("intent", "choices", {"choices": [row.intent]}),
    ]
    if row.flags:
        results.append(result("flags", "choices", {"choices": list(row.flags)}))
    return {
        "data": {"audio": audio_path, "clip_id": row.clip_id, "locale": row.locale},
        "annotations": [{"result": results, "ground_truth": decision(row) == "reviewed"}],
    }


def export_label_studio(store: QualityStore, out: Path, progress: Progress) -> ExportCount:
    _private_dir(out / "audio")
    count = ExportCount()
    tasks = []
    intents: set[str] = set()
    flags: set[str] = set()
    for row, data in with_audio(store, store.finals(), count):
        _write(out / "audio" / audio_name(row), data)
        tasks.append(label_studio_task(row, f"audio/{audio_name(row)}"))
        intents.add(row.intent)
        flags.update(row.flags)
        count.written += 1
        progress(1)
    _write(out / "tasks.json", json.dumps(tasks, ensure_ascii=False, indent=1).encode())
    taxonomy = load_default_taxonomy()
    config = label_studio_config(
        _with_taxonomy(intents, (i.id for i in taxonomy.intents)),
        _with_taxonomy(flags, (f.id for f in taxonomy.flags)),
    )
    _write(out / "label_config.xml", config.encode())
    return count


def count_finals(store: QualityStore) -> int:
    return sum(1 for _ in store.finals())


__all__ = ["FORMATS", "ExportCount", "export_hf_audiofolder", "export_jsonl", "export_label_studio"]
