"""Run an engine over many clips in a worker pool, with a progress bar, one outcome per clip.

A clip the engine cannot handle is an outcome with a reason (the clip keeps no draft); it never
stops the others. Threads, not processes: CTranslate2 releases the GIL while it decodes, so
`workers` threads share one loaded model (its `num_workers` replicas) without copying it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.server.asr.engine import AsrEngine, ClipNotTranscribable, Draft
from api.server.audio_store import AudioMissing


@dataclass(frozen=True, slots=True)
class DraftJob:
    clip_id: str
    #: How the admin knows the clip in reports (file name or clip id); never sent to annotators.
    label: str
    load: Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class DraftOutcome:
    clip_id: str
    label: str
    draft: Draft | None
    #: Why there is no draft (None when there is one).
    problem: str | None
    seconds: float


def draft_one(engine: AsrEngine, job: DraftJob) -> DraftOutcome:
    started = time.perf_counter()
    try:
        draft: Draft | None = engine.transcribe(engine.decode(job.load()))
        problem = None
    except ClipNotTranscribable as e:
        draft, problem = None, str(e)
    except OSError as e:  # the stored audio is unreadable
        draft, problem = None, f"cannot read its audio: {e.strerror or e}"
    except AudioMissing:
        draft, problem = None, "its stored audio is missing"
    return DraftOutcome(job.clip_id, job.label, draft, problem, time.perf_counter() - started)


def draft_many(
    engine: AsrEngine,
    jobs: Sequence[DraftJob],
    *,
    workers: int = 1,
    progress: bool = False,
    console: Console | None = None,
    on_outcome: Callable[[DraftOutcome], None] | None = None,
) -> list[DraftOutcome]:
    """Every job's outcome, in job order. `on_outcome` sees each as it completes (from the calling
    thread), e.g. to store drafts as they come instead of all at the end."""
    outcomes: list[DraftOutcome] = []
    with _bar(progress, len(jobs), console) as advance, ThreadPoolExecutor(max(1, workers)) as pool:
        for outcome in pool.map(lambda job: draft_one(engine, job), jobs):
            if on_outcome is not None:
                on_outcome(outcome)
            outcomes.append(outcome)
            advance()
    return outcomes


@contextmanager
def _bar(enabled: bool, total: int, console: Console | None) -> Iterator[Callable[[], None]]:
    if not enabled or total == 0:
        yield lambda: None
        return
    with Progress(
        TextColumn("drafting (ASR)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console if console is not None else Console(stderr=True),
    ) as bar:
        task = bar.add_task("asr", total=total)
        yield lambda: bar.advance(task)
