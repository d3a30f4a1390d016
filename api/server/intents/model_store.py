"""Trained intent models in the queue's database (`intent_models`), on both SQL backends.

Every `serve` process on one database reads its suggestions' model from here, so they all serve
the same version; `annotator asr train` on any host adds the next one. Versions are numbered
1, 2, … in the order they were stored and never change: a retrain adds a row, it replaces none.
Serving asks `deployed_version()` (one indexed MAX) and loads a version's bytes only when that
number moves.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

from api.server.sql_repo import SqlRepository, ts

if TYPE_CHECKING:
    from api.server.intents.classifier import IntentModel, Trained, TrainingReport

log = logging.getLogger(__name__)

_DEPLOYED = "SELECT MAX(version) FROM intent_models WHERE deployed = 1"


class IntentModelStore:
    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    def put(self, trained: Trained, now: datetime) -> TrainingReport:
        """Store `trained` as the next version (deployed when it beat the cold start)."""
        repo = self.repo
        with repo._write(durable=True) as conn:
            if repo.KIND == "postgresql":
                # Two trainers at once must not both take MAX + 1 (SQLite's writer lock is
                # already exclusive); readers are not blocked by this mode.
                repo._x(conn, "LOCK TABLE intent_models IN SHARE ROW EXCLUSIVE MODE")
            version = int(repo._one(conn, "SELECT COALESCE(MAX(version), 0) FROM intent_models")[0])
            report = trained.report(version + 1)
            repo._x(
                conn,
                "INSERT INTO intent_models (version, created_at, deployed, report, model)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    report.version,
                    ts(now),
                    int(report.deployed),
                    json.dumps(asdict(report)),
                    trained.model.to_bytes(),
                ),
            )
        return report

    def deployed_version(self) -> int:
        """The newest deployed version's number; 0 when there is none."""
        with self.repo._read() as conn:
            row = self.repo._one(conn, _DEPLOYED)
        return int(row[0]) if row and row[0] is not None else 0

    def load_deployed(self) -> tuple[int, IntentModel] | None:
        """The newest deployed version that loads; None when there is none. A version whose
        bytes do not load is logged and passed over (the one before it serves)."""
        from api.server.intents.classifier import IntentModel

        with self.repo._read() as conn:
            versions = [
                int(r[0])
                for r in self.repo._x(
                    conn,
                    "SELECT version FROM intent_models WHERE deployed = 1 ORDER BY version DESC",
                ).fetchall()
            ]
        for version in versions:
            with self.repo._read() as conn:
                row = self.repo._one(
                    conn, "SELECT model FROM intent_models WHERE version = ?", (version,)
                )
            if row is None:
                continue
            try:
                return version, IntentModel.from_bytes(bytes(row[0]))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
                log.warning("intent model v%d does not load (%s): passed over", version, e)
        return None

    def reports(self) -> list[TrainingReport]:
        """Every stored version's numbers, oldest first."""
        from api.server.intents.classifier import TrainingReport

        with self.repo._read() as conn:
            rows = self.repo._x(
                conn, "SELECT report FROM intent_models ORDER BY version"
            ).fetchall()
        return [TrainingReport(**json.loads(r[0])) for r in rows]
