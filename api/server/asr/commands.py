"""`annotator asr backfill|train|status`, and the drafting step of `annotator ingest --asr`.

Same conventions as `api.server.commands`: the argparse Namespace in, an exit code out (0 done,
1 done with problems — some clip kept no draft —, 2 unusable: the extra is missing, the model
tampered, bad flags), one line on stderr per problem. File names are the admin's own and are
printed (escaped); transcripts never are.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from api.server.asr.drafting import DraftJob, DraftOutcome, draft_many
from api.server.asr.engine import AsrEngine, AsrUnavailable
from api.server.asr.status import asr_status_line
from api.server.commands import UsageError, _open_repo, _run, _settings
from api.server.intents.model_store import IntentModelStore
from api.server.intents.suggester import RELOAD_SECONDS
from api.server.repository import Repository

#: Transcriptions at once: the CPU's cores, one thread each (more threads per clip scale worse).
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(slots=True)
class DraftRun:
    outcomes: list[DraftOutcome]
    stored: int
    audio_seconds: float
    wall_seconds: float

    @property
    def failed(self) -> list[DraftOutcome]:
        return [o for o in self.outcomes if o.draft is None]

    def summary(self) -> str:
        rtf = self.wall_seconds / self.audio_seconds if self.audio_seconds else 0.0
        failed = len(self.failed)
        return (
            f"ASR: {self.stored} clip{'s' if self.stored != 1 else ''} drafted "
            f"({self.audio_seconds:.0f} s of audio in {self.wall_seconds:.1f} s, "
            f"{rtf:.2f}× real time)" + (f", {failed} without a draft" if failed else "")
        )

    def print(self, console: Console | None = None) -> None:
        out = console if console is not None else Console(stderr=True)
        for o in self.failed:
            # Text (not markup) drops control characters a hostile file name could carry.
            line = Text.assemble(("no draft ", "bold yellow"), f"{o.label}: {o.problem}")
            out.print(line, soft_wrap=True, highlight=False)
        out.print(Text(self.summary()), soft_wrap=True, highlight=False)


def open_engine(workers: int) -> AsrEngine:
    """The default engine with `workers` parallel transcriptions; UsageError when unavailable."""
    from api.server.asr.whisper import WhisperEngine

    try:
        return WhisperEngine(workers=workers, threads=1 if workers > 1 else 0)
    except AsrUnavailable as e:
        raise UsageError(f"ASR: {e}") from None


def draft_queued(
    repo: Repository,
    engine: AsrEngine,
    *,
    clip_ids: Sequence[str] | None = None,
    workers: int = 1,
    progress: bool = False,
) -> DraftRun:
    """Draft every open clip without hint or draft (only `clip_ids` when given); each draft is
    stored as soon as it is made, so an interrupted run keeps what it did."""
    targets = repo.undrafted_clips(clip_ids)
    # Each worker reads its clip's bytes when it gets to it (from either backend's store).
    read = repo.read_audio
    jobs = [
        DraftJob(t.clip_id, t.source_name or t.clip_id, functools.partial(read, t.sha256))
        for t in targets
    ]
    stored = 0

    def keep(outcome: DraftOutcome) -> None:
        nonlocal stored
        if outcome.draft is None:
            return
        words = [(w.word, w.confidence) for w in outcome.draft.words]
        if repo.set_draft(outcome.clip_id, outcome.draft.text or None, words):
            stored += 1

    started = time.perf_counter()
    outcomes = draft_many(engine, jobs, workers=workers, progress=progress, on_outcome=keep)
    return DraftRun(
        outcomes, stored, sum(t.duration_s for t in targets), time.perf_counter() - started
    )


def _workers(args: argparse.Namespace) -> int:
    n = getattr(args, "asr_workers", None) or DEFAULT_WORKERS
    if not 1 <= n <= 64:
        raise UsageError("--asr-workers: give between 1 and 64")
    return int(n)


# ---------------------------------------------------------------- the ingest step


def ingest_wants_asr(args: argparse.Namespace) -> AsrEngine | None:
    """For `annotator ingest`: the engine to draft with, or None. `--asr` without the extra is
    a UsageError (before anything is ingested); by default drafts are made when the extra is
    installed, and its absence is said in one line."""
    choice = getattr(args, "asr", None)
    if choice is False:
        return None
    from api.server.asr.status import asr_status

    status = asr_status(check_model=False)
    if not status.available:
        if choice:
            raise UsageError(f"--asr: ASR drafts are {status.detail}")
        sys.stderr.write(f"ASR drafts: {status.detail}; ingesting without drafts\n")
        return None
    return open_engine(_workers(args))


def draft_ingested(
    repo: Repository, engine: AsrEngine, clip_ids: Sequence[str], args: argparse.Namespace
) -> int:
    """Draft the clips one ingest queued; the exit-code contribution (1 if some kept none)."""
    if not clip_ids:
        return 0
    run = draft_queued(
        repo, engine, clip_ids=clip_ids, workers=_workers(args), progress=sys.stderr.isatty()
    )
    run.print()
    return 1 if run.failed else 0


# ---------------------------------------------------------------- asr backfill / train / status


def backfill(args: argparse.Namespace) -> int:
    return _run(_backfill, args)


def _backfill(args: argparse.Namespace) -> int:
    workers = _workers(args)
    engine = open_engine(workers)
    repo = _open_repo(_settings(args))
    try:
        run = draft_queued(repo, engine, workers=workers, progress=sys.stderr.isatty())
    finally:
        repo.close()
    run.print()
    return 1 if run.failed else 0


def train(args: argparse.Namespace) -> int:
    return _run(_train, args)


def _gold_ids(path: Path | None) -> set[str]:
    if path is None:
        return set()
    try:
        return {line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--gold-ids {path}: cannot read it ({e})") from None


def _train(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from api.server.intents.classifier import TrainingRow
    from api.server.intents.classifier import train as train_model
    from api.server.quality_store import QualityStore
    from api.taxonomy import load_taxonomy

    settings = _settings(args)
    gold = _gold_ids(Path(args.gold_ids).expanduser() if getattr(args, "gold_ids", None) else None)
    taxonomy = load_taxonomy(settings.taxonomy_path)
    repo = _open_repo(settings)
    try:
        store = _model_store(repo)
        gold |= set(QualityStore(store.repo).gold())  # the queue's own gold clips, always
        rows = [
            TrainingRow(
                r.annotation.clip_id, r.annotation.content.transcript, r.annotation.content.intent
            )
            for r in repo.export()
        ]
        try:
            trained = train_model(rows, taxonomy.intents, gold_clip_ids=gold)
        except ImportError:
            raise UsageError("training needs scikit-learn: pip install 'annotator[asr]'") from None
        except ValueError as e:
            raise UsageError(str(e)) from None
        report = store.put(trained, datetime.now(UTC))
    finally:
        repo.close()
    state = "deployed" if report.deployed else "kept but NOT deployed (the cold start did better)"
    sys.stderr.write(
        f"intent model v{report.version}: {report.rows} annotations ({report.gold_excluded} on "
        f"gold clips left out); held out {report.held_out}: top-1 {report.top1:.1%}, top-3 "
        f"{report.top3:.1%} (cold start {report.coldstart_top1:.1%} / "
        f"{report.coldstart_top3:.1%}); {state}; stored in the queue's database, served by "
        f"every server on it within {RELOAD_SECONDS:.0f} s\n"
    )
    return 0


def _model_store(repo: Repository) -> IntentModelStore:
    from api.server.sql_repo import SqlRepository

    if not isinstance(repo, SqlRepository):  # pragma: no cover - every backend is SQL today
        raise UsageError("intent models need a SQL queue database")
    return IntentModelStore(repo)


def status(args: argparse.Namespace) -> int:
    return _run(_status, args)


def _status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    sys.stdout.write(asr_status_line() + "\n")
    repo = _open_repo(settings)
    try:
        deployed = [r for r in _model_store(repo).reports() if r.deployed]
    finally:
        repo.close()
    if deployed:
        r = deployed[-1]
        sys.stdout.write(
            f"intent suggestions: trained model v{r.version} ({r.rows} annotations; held-out "
            f"top-3 {r.top3:.1%}, cold start {r.coldstart_top3:.1%})\n"
        )
    else:
        sys.stdout.write(
            "intent suggestions: cold start (descriptions and examples; no trained model yet)\n"
        )
    return 0
