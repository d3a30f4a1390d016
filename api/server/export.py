"""The admin export: one `api.models.ExportRecord` per line (JSONL), shared by the HTTP route and
`annotator export`."""

from __future__ import annotations

from collections.abc import Iterator

from api.models import ExportRecord
from api.server.repository import ExportRow, Repository


def export_record(row: ExportRow) -> ExportRecord:
    a = row.annotation
    return ExportRecord(
        annotation_id=a.annotation_id,
        clip_id=a.clip_id,
        source_name=row.source_name,
        locale=row.locale,
        annotator=a.annotator,
        transcript=a.content.transcript,
        intent=a.content.intent,
        flags=list(a.content.flags),
        note=a.content.note,
        status=a.status,
        created_at=a.created_at,
        amended_at=a.amended_at,
        taxonomy_version=row.taxonomy_version,
        audio_deleted_at=row.audio_deleted_at,
    )


def export_lines(repo: Repository) -> Iterator[bytes]:
    for row in repo.export():
        yield export_record(row).model_dump_json().encode() + b"\n"
