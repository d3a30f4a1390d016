"""`SqlRepository`: the `Repository` methods both SQL backends share, over a tiny dialect.

The SQL here is written once, with `?` placeholders, in the subset SQLite and PostgreSQL agree on;
a backend supplies its transactions (`_write`, `_read`), its placeholder style (`_sql`), its row
locks (`FOR_UPDATE`: empty on SQLite, whose `BEGIN IMMEDIATE` already serialises writers), the
claim (the one statement that really differs), its migrations and its `AudioStore`. The queue
rules themselves are pure decisions in `api.server.rules`, applied to rows read inside the write
transaction. Every write that depends on a lease names it by `lease_id` AND `fence`, and a write
that finds its row changed refuses instead of applying (belt and braces under the row locks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from api.models import AnnotationStatus, ReleaseReason, Role
from api.server import amendment_log, rules
from api.server.audio_store import AudioMissing, AudioStore
from api.server.errors import Rejection, not_found
from api.server.records import NewClip
from api.server.repository import (
    Activity,
    AnnotationContent,
    ClipInfo,
    DraftTarget,
    ExportRow,
    LeaseGrant,
    LeaseStatus,
    Principal,
    StoredAnnotation,
    StoredAudio,
    Submission,
    SubmitResult,
)

#: Clips per durable step in `add_clips` (their audio is held in memory meanwhile).
ADD_CLIPS_BATCH = 500

ANNOTATION_COLUMNS = (
    "annotation_id, clip_id, annotator, transcript, intent, flags, note, escalated, status, "
    "created_at, amended_at"
)

#: How a probe of one clip's annotations compares the person: `a.annotator || '' = ?` equals
#: `a.annotator = ?` row for row, but no index can serve the expression, so the probe goes
#: through the unique (clip_id, annotator) key by its clip (a few rows at most: one per
#: person who annotated it). Written plainly, the planner may pick `annotations_by_time`
#: (annotator, created_at) instead and read every annotation the person ever made for each
#: candidate clip: with statistics that do not yet know the person's history (a young table,
#: one that grew since autovacuum last analyzed it) both index scans are costed at one row, and
#: the tie went the wrong way on every claim measured (notes/pg9e.md: the claim's database time
#: grew by ~90 µs per 1,000 annotations of the person). SQLite reads it the same way.
PERSON_PROBE = "annotator || '' = ?"

#: A clip nobody holds that `:me` (params: now, me, me) neither annotated nor skipped, whose
#: audio the retention policy has not deleted. The two "not mine already" checks carry `LIMIT 1
#: OFFSET 0` so that PostgreSQL keeps each as a probe of its (clip_id, annotator) index for the
#: candidate clip in hand, in queue order, instead of turning it into an anti-join whose plan
#: follows the table statistics: those lag a busy queue (the leases table grows by one row a
#: claim), and the anti-join then read every lease of the table, or every annotation the person
#: ever made, on every claim (0.2 ms and growing; notes/pg9c.md). The candidates are few (the
#: first open clips), so a probe each is the least work whatever the statistics say. (OFFSET
#: is what stops the rewrite; SQLite reads it as written.) The person is compared as
#: `PERSON_PROBE` (above) for the same reason one level down.
OPEN_TO_ME_WHERE = f"""
       c.audio_deleted_at IS NULL
   AND (c.leased_until IS NULL OR c.leased_until <= ?)
   AND NOT EXISTS (SELECT 1 FROM annotations a
                    WHERE a.clip_id = c.clip_id AND a.{PERSON_PROBE} LIMIT 1 OFFSET 0)
   AND NOT EXISTS (SELECT 1 FROM leases l
                    WHERE l.clip_id = c.clip_id AND l.annotator = ?
                      AND l.release_reason IN ({", ".join(f"'{r}'" for r in rules.SKIP_REASONS)})
                    LIMIT 1 OFFSET 0)
"""  # noqa: S608 - the IN list is built from our own enum, not from input

#: Clips the claim may hand to `:me` (both backends; the caller adds ORDER/LIMIT/locks). Gold
#: clips are dealt apart, at their own rate (`api.server.quality_store.QualityStore.claim_gold`).
#: Parameters: now, then the annotator three times. The last clause is the welfare opt-out: no
#: clip an earlier annotator flagged in a category this person opted out of (issue 11); written
#: from the person's opt-outs (a primary-key probe, empty for most people) down to the clip's
#: annotations, so no plan scans every annotation per claim.
CLAIMABLE_WHERE = f"""
       c.completed < c.needed
   AND {OPEN_TO_ME_WHERE}
   AND NOT EXISTS (SELECT 1 FROM gold_clips g WHERE g.clip_id = c.clip_id)
   AND NOT EXISTS (SELECT 1 FROM welfare_opt_outs o
                    WHERE o.person = ?
                      AND EXISTS (SELECT 1 FROM annotations f
                                   WHERE f.clip_id = c.clip_id AND f.flags LIKE o.flag_pattern))
"""  # noqa: S608 - our own constants

#: The person's live leases (params: annotator, now), for the per-person cap.
LIVE_LEASES_SQL = (
    "(SELECT COUNT(*) FROM leases WHERE annotator = ? AND released = 0 AND expires_at > ?)"
)


def lease_moved() -> Rejection:
    """A guarded write found its row changed by someone else meanwhile: nothing is applied."""
    return Rejection(409, "stale_fence", "the lease changed meanwhile; try again")


@dataclass(frozen=True, slots=True)
class ClaimGate:
    """A condition the claim's own statement checks before it leases anything: `sql` an integer
    expression (1: go ahead, 0: lease nothing) in `?` placeholders, with its `params`. The
    welfare break check travels this way (`api.server.welfare.WelfareService.claim_gate`), so
    the common case costs no statement of its own; a closed gate raises `GateClosed` and the
    caller decides with its full rules."""

    sql: str
    params: tuple[Any, ...]


class GateClosed(Exception):
    """The claim's `ClaimGate` said 0: nothing was leased."""


class Replayed(Exception):
    """The claim's request key already names live leases of this person: nothing was leased,
    the caller answers with those."""


_CLIP_INFO_COLUMNS = (
    "clip_id, duration_s, sample_rate, channels, locale, sha256, asr_hint, asr_words"
)

#: The person's live-lease count (the cap's) and, on the same one-or-more rows, the live leases an
#: earlier claim with this `Idempotency-Key` granted (NULLs when none): one statement, so the
#: replay check costs a claim neither a round trip (PostgreSQL) nor a statement (SQLite).
#: Parameters: annotator, now, annotator, key, now.
#: A key's live leases (params: annotator, request key, now), for answering a retry.
_REPLAYED = (
    "SELECT l.lease_id, l.fence, l.expires_at, c.clip_id, c.duration_s, c.sample_rate,"
    " c.channels, c.locale, c.sha256, c.asr_hint, c.asr_words"
    " FROM leases l JOIN clips c ON c.clip_id = l.clip_id"
    " WHERE l.annotator = ? AND l.request_key = ? AND l.released = 0 AND l.expires_at > ?"
    " ORDER BY c.seq"
)

#: Whether a key names live leases of the person (params: annotator, request key, now).
REPLAYED_SQL = (
    "(SELECT COUNT(*) FROM leases WHERE annotator = ? AND request_key = ? AND released = 0"
    " AND expires_at > ?)"
)


def ts(when: datetime) -> float:
    return when.timestamp()


def dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def new_id() -> str:
    # 16 url-safe characters (96 bits): unguessable, and matches api.models.OpaqueId.
    return secrets.token_urlsafe(12)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def annotation_from_row(row: Sequence[Any]) -> StoredAnnotation:
    aid, clip_id, annotator, transcript, intent, flags, note, escalated, status = row[:9]
    created, amended = row[9], row[10]
    return StoredAnnotation(
        annotation_id=aid,
        clip_id=clip_id,
        annotator=annotator,
        content=AnnotationContent(
            transcript=transcript,
            intent=intent,
            flags=tuple(json.loads(flags)),
            note=note,
            escalated=bool(escalated),
        ),
        status=AnnotationStatus(status),
        created_at=dt(created),
        amended_at=dt(amended) if amended is not None else None,
    )


def draft_words(raw: str | None) -> tuple[tuple[str, float], ...] | None:
    """`clips.asr_words` (JSON `[[word, confidence], ...]`, see migration 3) decoded."""
    if raw is None:
        return None
    return tuple((str(w), float(c)) for w, c in json.loads(raw))


def clip_info(row: Sequence[Any]) -> ClipInfo:
    clip_id, duration, rate, channels, locale, sha, hint, words = row
    return ClipInfo(
        clip_id, float(duration), int(rate), int(channels), locale, sha, hint, draft_words(words)
    )


@dataclass(frozen=True, slots=True)
class AcceptedSubmit:
    """A submit the rules accept, with the writes it needs (`SqlRepository._submit_writes`)."""

    lease: rules.LeaseRow
    #: The lease still holds the clip: completing it lets the clip go too.
    holds_clip: bool
    #: The lease is still open: the submit releases it.
    releases: bool
    #: The annotation row, in `SqlRepository._SUBMIT_INSERT`'s order.
    row_values: tuple[Any, ...]
    stored: StoredAnnotation


def submit_decision(
    annotator: str,
    s: Submission,
    t_now: float,
    row: Sequence[Any] | None,
    earlier: Sequence[Any] | None,
) -> SubmitResult | AcceptedSubmit:
    """What a submit does, from what it read: `row` (`SUBMIT_READ_COLUMNS`; None when no such
    lease) and `earlier` (request_hash + `ANNOTATION_COLUMNS` of this annotator's annotation under
    the same Idempotency-Key, or None): the replayed result, the writes of an accepted one, or a
    raised `Rejection`."""
    if earlier is not None:
        rules.check_replay(earlier[0], s.request_hash)
        return SubmitResult(annotation=annotation_from_row(earlier[1:]), replayed=True)
    lease_row = None
    if row is not None:
        lease_row = rules.LeaseRow(row[0], row[1], row[2], int(row[3]), float(row[4]), bool(row[5]))
    lease = rules.own_lease(lease_row, annotator)
    assert row is not None  # own_lease refused a missing lease
    clip = rules.ClipState(int(row[6]), int(row[7]), row[8], row[9])
    status = rules.submission_status(lease, s.fence, clip, row[10], t_now)
    annotation_id = new_id()
    c = s.content
    row_values = (
        annotation_id,
        lease.clip_id,
        s.lease_id,
        annotator,
        s.idempotency_key,
        s.request_hash,
        s.body_json,
        c.transcript,
        c.intent,
        json.dumps(list(c.flags)),
        c.note,
        s.active_seconds,
        status.value,
        int(c.escalated),
        s.taxonomy_version,
        t_now,
    )
    stored = StoredAnnotation(
        annotation_id=annotation_id,
        clip_id=lease.clip_id,
        annotator=annotator,
        content=c,
        status=status,
        created_at=dt(t_now),
        amended_at=None,
    )
    return AcceptedSubmit(
        lease, clip.current_lease == s.lease_id, not lease.released, row_values, stored
    )


class SqlRepository:
    """The shared half of both SQL backends (see the module docstring)."""

    #: Appended to the SELECTs that read rows a write transaction will change.
    FOR_UPDATE: ClassVar[str] = ""
    #: What `describe()` calls this backend in messages.
    KIND: ClassVar[str] = "sql"
    audio: AudioStore
    #: The schema versions opening this database applied (empty when it was current).
    applied_migrations: list[int] = []  # noqa: RUF012 - replaced per instance, never mutated

    # ------------------------------------------------------------------ backend hooks

    def _sql(self, text: str) -> str:
        return text

    def _write(
        self, *, durable: bool = False, batched: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        """One write transaction; `durable` means on stable storage when it commits.

        `batched`: statements may travel to the database together (PostgreSQL: pipeline mode,
        BEGIN with the first statement, COMMIT without waiting for the ones before it), so a
        transaction costs a round trip per read it waits for rather than per statement. Its
        rule: read a cursor's rows by fetching them (that waits for them); read a `rowcount`
        only after `_settle`."""
        raise NotImplementedError

    #: Whether `shared_writes` is offered (both backends: a process's claims queue anyway).
    shares_writes: ClassVar[bool] = False

    def shared_writes(self) -> contextlib.AbstractContextManager[None]:
        """One transaction for every write this thread makes in the block, each a savepoint."""
        raise NotImplementedError

    def _settle(self, conn: Any) -> None:
        """In a `batched` transaction: wait for every statement issued so far (their rowcounts
        are known after). Elsewhere, and on SQLite, a no-op."""

    def _read(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _statement(self) -> contextlib.AbstractContextManager[Any]:
        """For work that is ONE statement where the backend makes that a transaction of its own
        (PostgreSQL in autocommit); otherwise a (non-durable) write transaction."""
        return self._write()

    def _claim_transaction(self) -> contextlib.AbstractContextManager[Any]:
        """Where a claim is written. A lease the client has been told of must outlive a crash of
        the database process: the annotation submitted later names it, and a lease the database
        forgot turns that work into a 404 (the chaos run with database restarts caught this)."""
        return self._statement()

    def _claim_rows(
        self,
        conn: Any,
        annotator: str,
        count: int,
        t_now: float,
        expires: float,
        *,
        max_live: int | None,
        gate: ClaimGate | None,
        request_key: str | None = None,
        replay: bool = False,
    ) -> Iterable[tuple[str, int, tuple[Any, ...]]]:
        """Lease up to `count` claimable clips inside the caller's write transaction: stamp each
        with a new lease id, a bumped fence and `expires`, insert its lease row (with the
        request's `request_key`, NULL without one), and return
        (lease_id, fence, the `_CLIP_INFO_COLUMNS` row) per clip in queue order. The same
        statement reads `claim_head` (the gate, the live leases, whether `request_key` already
        names live leases when `replay`) and leases nothing unless `admit` would; `admit`'s
        refusals (and `Replayed`) are raised before the first row. The rows may be read after
        the transaction (PostgreSQL sends the claim and its COMMIT together)."""
        raise NotImplementedError

    @staticmethod
    def claim_head(
        annotator: str,
        t_now: float,
        max_live: int | None,
        gate: ClaimGate | None,
        replay_key: str | None = None,
    ) -> tuple[str, tuple[Any, ...]]:
        """`SELECT <gate> AS clear, <live leases> AS live, <key's live leases> AS replayed` (and
        its parameters): what a claim must know before it leases, read by the claim's own
        statement."""
        gate_sql, params = ("1", ()) if gate is None else (gate.sql, gate.params)
        live_sql = "0"
        if max_live is not None:
            live_sql, params = LIVE_LEASES_SQL, (*params, annotator, t_now)
        replayed_sql = "0"
        if replay_key is not None:
            replayed_sql, params = REPLAYED_SQL, (*params, annotator, replay_key, t_now)
        return (
            f"SELECT {gate_sql} AS clear, {live_sql} AS live, {replayed_sql} AS replayed",
            params,
        )

    @staticmethod
    def admit(clear: Any, live: Any, replayed: Any, count: int, max_live: int | None) -> int:
        """How many of `count` the claim may lease, from its head row: a closed gate raises
        `GateClosed`, a retry of an answered request `Replayed` (before the cap: its leases are
        already counted), the live-lease cap a 409 `lease_cap` (`rules.lease_allowance`)."""
        if not clear:
            raise GateClosed
        if replayed:
            raise Replayed
        return count if max_live is None else rules.lease_allowance(int(live), max_live, count)

    def _known_sha256(self, digests: list[str]) -> set[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """The database, for messages (no password)."""
        return self.KIND

    # ------------------------------------------------------------------ small helpers

    def _x(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(text), tuple(params))

    def _one(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return self._x(conn, text, params).fetchone()

    def _meta(self, conn: Any, key: str) -> str | None:
        row = self._one(conn, "SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    def _set_meta(self, conn: Any, key: str, value: str) -> None:
        self._x(
            conn,
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_annotations_per_clip(self, k: int) -> None:
        """Make `k` the queue's K: recorded for later ingests and applied to every clip."""
        if k < 1:
            raise ValueError("annotations per clip must be at least 1")
        with self._write() as conn:
            self._set_meta(conn, "annotations_per_clip", str(k))
            self._x(conn, "UPDATE clips SET needed = ? WHERE needed != ?", (k, k))

    # ------------------------------------------------------------------ admin: clips

    def add_clip(self, clip: NewClip) -> str | None:
        return self._add_clip_batch([clip])[0]

    def add_clips(self, clips: Iterable[NewClip], batch: int = ADD_CLIPS_BATCH) -> list[str | None]:
        """`add_clip` for many clips, in batches of `batch`: per batch the audio is made durable
        together and the rows go in one durable transaction. Same result per clip as
        `add_clip`: its new clip id, or None for a duplicate (already queued, or the same
        sha256 earlier in `clips`)."""
        results: list[str | None] = []
        chunk: list[NewClip] = []
        for clip in clips:
            chunk.append(clip)
            if len(chunk) >= batch:
                results += self._add_clip_batch(chunk)
                chunk = []
        if chunk:
            results += self._add_clip_batch(chunk)
        self.refresh_statistics()
        return results

    def refresh_statistics(self) -> None:
        """After a bulk insert of clips: let the planner see them (PostgreSQL: ANALYZE). A
        planner that still thinks the clips table empty picks a claim plan that filters every
        open clip per claim instead of walking the queue's index to the first one free."""

    def batcher(self) -> ClipBatcher:
        return ClipBatcher(self)

    def _insert_clip(self, conn: Any, clip: NewClip, now: float, clip_id: str) -> str | None:
        cursor = self._x(
            conn,
            "INSERT INTO clips (clip_id, sha256, media_type, size_bytes, duration_s,"
            " sample_rate, channels, locale, asr_hint, source_name, needed, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " COALESCE((SELECT CAST(value AS INTEGER) FROM meta"
            "           WHERE key = 'annotations_per_clip'), 1), ?)"
            " ON CONFLICT (sha256) DO NOTHING",
            (
                clip_id,
                clip.sha256,
                clip.media_type,
                len(clip.audio),
                clip.duration_s,
                clip.sample_rate,
                clip.channels,
                clip.locale,
                clip.asr_hint,
                clip.source_name,
                now,
            ),
        )
        # Another ingest may have queued the same bytes since we looked: not queued twice.
        return clip_id if cursor.rowcount == 1 else None

    def _add_clip_batch(
        self, clips: list[NewClip], clip_ids: list[str] | None = None
    ) -> list[str | None]:
        known = self._known_sha256([c.sha256 for c in clips])
        fresh: dict[str, NewClip] = {}
        for clip in clips:
            if clip.sha256 not in known:
                fresh.setdefault(clip.sha256, clip)
        # Store the bytes before the rows commit, so a queued clip always has its audio.
        self.audio.put_many([(c.sha256, c.audio) for c in fresh.values()])
        results: list[str | None] = [None] * len(clips)
        if not fresh:
            return results
        now = ts(datetime.now(UTC))
        with self._write(durable=True) as conn:
            for i, clip in enumerate(clips):
                if fresh.get(clip.sha256) is clip:
                    del fresh[clip.sha256]  # later clips with the same bytes are duplicates
                    given = clip_ids[i] if clip_ids is not None else new_id()
                    results[i] = self._insert_clip(conn, clip, now, given)
        return results

    # ------------------------------------------------------------------ admin: tokens

    def create_token(self, name: str, role: Role) -> str:
        from api.server.people_store import PeopleStore

        return PeopleStore(self).create_token(name, role)[0]

    def principal_for_token(self, token: str, now: datetime | None = None) -> Principal | None:
        t_now = ts(now or datetime.now(UTC))
        with self._read() as conn:
            row = self._one(
                conn,
                "SELECT name, role, person_id, expires_at FROM tokens WHERE token_sha256 = ?"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                (token_hash(token), t_now),
            )
        if row is None:
            return None
        expires = dt(float(row[3])) if row[3] is not None else None
        return Principal(name=row[0], role=Role(row[1]), person_id=row[2], expires_at=expires)

    def revoke_tokens(self, name: str, only_sha256: str | None = None) -> int:
        """Revoke every live token of `name` (or just the one whose hash is `only_sha256`); how
        many. Bumps the token generation, which every server process polls (see
        `QueueService.authenticate`)."""
        sql = "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL"
        params: tuple[Any, ...] = (ts(datetime.now(UTC)), name)
        if only_sha256 is not None:
            sql += " AND token_sha256 = ?"
            params += (only_sha256,)
        with self._write(durable=True) as conn:
            cursor = self._x(conn, sql, params)
            count = int(cursor.rowcount)
            if count:
                self._x(
                    conn,
                    "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                    " WHERE key = 'token_generation'",
                )
        return count

    def token_generation(self) -> int:
        with self._read() as conn:
            value = self._meta(conn, "token_generation")
        return int(value or 0)

    # ------------------------------------------------------------------ machine drafts

    def undrafted_clips(self, clip_ids: Sequence[str] | None = None) -> list[DraftTarget]:
        sql = (
            "SELECT clip_id, source_name, duration_s, sha256 FROM clips"
            " WHERE completed < needed AND asr_hint IS NULL AND asr_words IS NULL"
            " AND audio_deleted_at IS NULL"
        )
        wanted = None if clip_ids is None else set(clip_ids)
        with self._read() as conn:
            rows = self._x(conn, sql + " ORDER BY seq").fetchall()
        # Filtered here, not by an IN list: both backends, and any number of ids.
        return [
            DraftTarget(cid, name, float(dur), sha)
            for cid, name, dur, sha in rows
            if wanted is None or cid in wanted
        ]

    def read_audio(self, sha256: str) -> bytes:
        return self.audio.read(sha256)

    def set_draft(self, clip_id: str, text: str | None, words: Sequence[tuple[str, float]]) -> bool:
        encoded = json.dumps([[w, c] for w, c in words], ensure_ascii=False)
        with self._statement() as conn:
            cursor = self._x(
                conn,
                "UPDATE clips SET asr_hint = ?, asr_words = ?"
                " WHERE clip_id = ? AND asr_hint IS NULL AND asr_words IS NULL",
                (text, encoded, clip_id),
            )
        return int(cursor.rowcount) == 1

    # ------------------------------------------------------------------ leases

    def _start_claim(self, conn: Any, annotator: str, *, serialise: bool) -> None:
        """What the claim's transaction does before the claim. With `serialise`: one person's
        claims are serialised for the rest of the transaction (the live-lease cap counts, then
        claims). SQLite's BEGIN IMMEDIATE already serialises every writer."""

    def live_leases(self, conn: Any, annotator: str, t_now: float) -> int:
        row = self._one(conn, f"SELECT {LIVE_LEASES_SQL}", (annotator, t_now))
        return int(row[0])

    def claim(
        self,
        annotator: str,
        count: int,
        ttl_s: int,
        now: datetime,
        *,
        max_live: int | None = None,
        max_lifetime_s: int | None = None,
        request_key: str | None = None,
        replay: bool = True,
        gate: ClaimGate | None = None,
    ) -> list[LeaseGrant]:
        t_now = ts(now)
        expires = t_now + (ttl_s if max_lifetime_s is None else min(ttl_s, max_lifetime_s))
        try:
            with self._claim_transaction() as conn:
                # Serialising also makes a retry wait for the request it repeats (and see its
                # leases).
                serialise = max_live is not None or request_key is not None
                self._start_claim(conn, annotator, serialise=serialise)
                # One statement: the gate, the cap's count, the replay check and the claim (see
                # `_claim_rows`).
                rows = self._claim_rows(
                    conn,
                    annotator,
                    count,
                    t_now,
                    expires,
                    max_live=max_live,
                    gate=gate,
                    request_key=request_key,
                    replay=request_key is not None and replay,
                )
            when = dt(expires)
            return [
                LeaseGrant(lease_id=lease_id, fence=int(fence), expires_at=when, clip=clip_info(i))
                for lease_id, fence, i in rows
            ]
        except Replayed:
            # A retry of a request already answered (rare): its leases, read on their own.
            assert request_key is not None
            with self._read() as conn:
                found = self._x(conn, _REPLAYED, (annotator, request_key, t_now)).fetchall()
            return [
                LeaseGrant(r[0], int(r[1]), dt(float(r[2])), clip_info(r[3:]), True) for r in found
            ]

    def _lease(self, conn: Any, lease_id: str, *, lock: bool = True) -> rules.LeaseRow | None:
        row = self._one(
            conn,
            "SELECT lease_id, clip_id, annotator, fence, expires_at, released, created_at"  # noqa: S608 - our own lock clause
            f" FROM leases WHERE lease_id = ?{self.FOR_UPDATE if lock else ''}",
            (lease_id,),
        )
        if row is None:
            return None
        return rules.LeaseRow(
            row[0], row[1], row[2], int(row[3]), float(row[4]), bool(row[5]), float(row[6])
        )

    @staticmethod
    def _changed(cursor: Any) -> None:
        if cursor.rowcount != 1:  # the row moved under us: refuse rather than half-apply
            raise lease_moved()

    def renew(
        self,
        lease_id: str,
        annotator: str,
        ttl_s: int,
        now: datetime,
        *,
        max_lifetime_s: int | None = None,
    ) -> LeaseStatus:
        t_now = ts(now)
        with self._write(batched=True) as conn:
            lease = rules.own_lease(self._lease(conn, lease_id), annotator)
            rules.require_live(lease, t_now)
            expires = rules.lease_end(lease, t_now, ttl_s, max_lifetime_s)
            moved = self._x(
                conn,
                "UPDATE leases SET expires_at = ? WHERE lease_id = ? AND fence = ?",
                (expires, lease_id, lease.fence),
            )
            self._x(
                conn,
                "UPDATE clips SET leased_until = ?"
                " WHERE clip_id = ? AND current_lease = ? AND fence = ?",
                (expires, lease.clip_id, lease_id, lease.fence),
            )
            self._settle(conn)
            self._changed(moved)
        return LeaseStatus(
            lease_id=lease_id, fence=lease.fence, expires_at=dt(expires), released=False
        )

    def release(
        self,
        lease_id: str,
        annotator: str,
        reason: ReleaseReason,
        detail: str | None,
        now: datetime,
    ) -> None:
        with self._write(batched=True) as conn:
            lease = rules.own_lease(self._lease(conn, lease_id), annotator)
            if lease.released:
                return  # releasing twice is harmless (a retried request)
            self._x(
                conn,
                "UPDATE leases SET released = 1, release_reason = ?, release_detail = ?,"
                " released_at = ? WHERE lease_id = ? AND fence = ?",
                (ReleaseReason(reason).value, detail, ts(now), lease_id, lease.fence),
            )
            self._x(
                conn,
                "UPDATE clips SET leased_until = NULL, current_lease = NULL"
                " WHERE clip_id = ? AND current_lease = ? AND fence = ?",
                (lease.clip_id, lease_id, lease.fence),
            )

    #: The lease, its clip's sha256 and media type, and the audio's bytes where the database
    #: keeps them (a backend's own query; NULL here: they come from `self.audio`), in one read.
    _LEASE_AUDIO: ClassVar[str] = (
        "SELECT l.lease_id, l.clip_id, l.annotator, l.fence, l.expires_at, l.released,"
        " c.sha256, c.media_type, NULL, l.created_at, c.audio_deleted_at"
        " FROM leases l JOIN clips c ON c.clip_id = l.clip_id"
        " WHERE l.lease_id = ?"
    )

    def lease_audio(self, lease_id: str, annotator: str, now: datetime) -> StoredAudio:
        with self._read() as conn:
            row = self._one(conn, self._LEASE_AUDIO, (lease_id,))
        lease = None
        if row is not None:
            lease = rules.LeaseRow(
                row[0], row[1], row[2], int(row[3]), float(row[4]), bool(row[5]), float(row[9])
            )
        # Bytes read along with someone else's (or a dead) lease go no further than here.
        rules.require_live(rules.own_lease(lease, annotator), ts(now))
        if row[10] is not None:
            raise Rejection(
                410, "audio_deleted", "this clip's audio was deleted under the retention policy"
            )
        if row[8] is not None:
            return StoredAudio(data=bytes(row[8]), media_type=row[7])
        try:
            data = self.audio.read(row[6])
        except AudioMissing:
            raise Rejection(500, "audio_missing", "the clip's audio is missing") from None
        return StoredAudio(data=data, media_type=row[7])

    # ------------------------------------------------------------------ annotations

    def submit(self, annotator: str, submission: Submission, now: datetime) -> SubmitResult:
        result = self.submit_many([(annotator, submission)], now)[0]
        if isinstance(result, Rejection):
            raise result
        return result

    #: `Repository.defers_sync`: a backend that can flush its commits apart from them says so.
    defers_sync: ClassVar[bool] = False

    def sync_commits(self) -> None:
        """Nothing to do where every durable commit is flushed at COMMIT."""

    def submit_many(
        self, items: Sequence[tuple[str, Submission]], now: datetime, *, sync: bool = True
    ) -> list[SubmitResult | Rejection]:
        """Several `submit`s, in order, as one durable transaction: each item runs in its own
        SAVEPOINT, so an item that is refused (its `Rejection` is its result) leaves no trace and
        does not affect the others, exactly as if the items had been submitted one by one; the
        accepted ones become durable together at the single COMMIT, before this returns (with
        `sync=False` where `defers_sync`: at the next `sync_commits()`)."""
        t_now = ts(now)
        results: list[SubmitResult | Rejection] = []
        if not items:
            return results
        durable = sync or not self.defers_sync
        if len(items) == 1:  # group commit's usual group: the transaction is the savepoint
            try:
                with self._write(durable=durable, batched=True) as conn:
                    return [self._submit_one(conn, items[0][0], items[0][1], t_now, alone=True)]
            except Rejection as r:
                if r.status_code >= 500:  # not a refusal: the database failed
                    raise
                return [r]
        with self._write(durable=durable, batched=True) as conn:
            for annotator, submission in items:
                conn.execute("SAVEPOINT item")
                try:
                    result: SubmitResult | Rejection = self._submit_one(
                        conn, annotator, submission, t_now, alone=False
                    )
                except Rejection as r:
                    conn.execute("ROLLBACK TO SAVEPOINT item")
                    result = r
                conn.execute("RELEASE SAVEPOINT item")
                results.append(result)
        return results

    #: What a submit's decision reads: the lease, its clip and this annotator's annotation of it
    #: (params: annotator, then the lease's id in the FROM clause).
    SUBMIT_READ_COLUMNS: ClassVar[str] = (
        "l.lease_id, l.clip_id, l.annotator, l.fence, l.expires_at, l.released,"  # noqa: S608 - our own constants
        " c.completed, c.needed, c.current_lease, c.leased_until,"
        " (SELECT a.annotation_id FROM annotations a"
        f"   WHERE a.clip_id = l.clip_id AND a.{PERSON_PROBE})"
    )
    #: The lease, its clip and this annotator's annotation of it, in one read (and one lock).
    _SUBMIT_READ: ClassVar[str] = (
        f"SELECT {SUBMIT_READ_COLUMNS}"  # noqa: S608 - our own constants
        " FROM leases l JOIN clips c ON c.clip_id = l.clip_id WHERE l.lease_id = ?"
    )

    def _submit_one(
        self, conn: Any, annotator: str, s: Submission, t_now: float, *, alone: bool
    ) -> SubmitResult:
        """One submission inside the caller's write transaction; raises `Rejection` when refused
        (every check precedes the first write; `alone`: the transaction holds nothing else, so
        its writes may be settled by its COMMIT). The lease row is locked first, so a concurrent
        retry of the same request waits here and then finds the first one's annotation."""
        read = self._x(conn, self._SUBMIT_READ + self.FOR_UPDATE, (annotator, s.lease_id))
        replay = self._x(
            conn,
            f"SELECT request_hash, {ANNOTATION_COLUMNS} FROM annotations"  # noqa: S608
            " WHERE annotator = ? AND idempotency_key = ?",
            (annotator, s.idempotency_key),
        )
        row, earlier = read.fetchone(), replay.fetchone()  # both reads in one round trip
        decided = submit_decision(annotator, s, t_now, row, earlier)
        if isinstance(decided, SubmitResult):
            return decided
        self._submit_writes(
            conn, decided.row_values, decided.lease, decided.holds_clip, decided.releases, alone
        )
        return SubmitResult(annotation=decided.stored, replayed=False)

    #: The annotation row of a submit (its values in this order: `_submit_one`).
    _SUBMIT_INSERT: ClassVar[str] = (
        "INSERT INTO annotations (annotation_id, clip_id, lease_id, annotator,"
        " idempotency_key, request_hash, body, transcript, intent, flags, note,"
        " active_seconds, status, escalated, taxonomy_version, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    #: The clip's completion: when the submit's lease still holds the clip, it lets it go too
    #: (checked: a fence that moved meanwhile refuses the submit).
    _COMPLETE_HELD: ClassVar[str] = (
        "UPDATE clips SET completed = completed + 1, current_lease = NULL,"
        " leased_until = NULL WHERE clip_id = ? AND current_lease = ? AND fence = ?"
    )
    _COMPLETE: ClassVar[str] = "UPDATE clips SET completed = completed + 1 WHERE clip_id = ?"
    _RELEASE_SUBMITTED: ClassVar[str] = (
        "UPDATE leases SET released = 1, release_reason = 'submitted'"
        " WHERE lease_id = ? AND fence = ? AND released = 0"
    )

    def _submit_writes(
        self,
        conn: Any,
        row_values: tuple[Any, ...],
        lease: rules.LeaseRow,
        holds_clip: bool,
        releases: bool,
        alone: bool,
    ) -> None:
        """The writes of an accepted submit (every check made): the annotation row, the clip's
        completion (freeing the clip when this lease `holds_clip`), the lease's release when it
        `releases`. A guarded write that finds its row moved raises the 409 `stale_fence` —
        here, or, when the submit is `alone` in its transaction, possibly at its COMMIT."""
        checked = []  # the writes travel together; their counts are checked after them
        self._x(conn, self._SUBMIT_INSERT, row_values)
        if holds_clip:
            checked.append(
                self._x(conn, self._COMPLETE_HELD, (lease.clip_id, lease.lease_id, lease.fence))
            )
        else:
            self._x(conn, self._COMPLETE, (lease.clip_id,))
        if releases:
            checked.append(self._x(conn, self._RELEASE_SUBMITTED, (lease.lease_id, lease.fence)))
        self._settle(conn)
        for cursor in checked:
            self._changed(cursor)

    def get_annotation(self, annotation_id: str) -> StoredAnnotation | None:
        with self._read() as conn:
            row = self._one(
                conn,
                f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE annotation_id = ?",  # noqa: S608
                (annotation_id,),
            )
        return annotation_from_row(row) if row else None

    def amend(
        self,
        annotation_id: str,
        annotator: str,
        content: AnnotationContent,
        now: datetime,
        window_s: int,
        escalation_flags: frozenset[str] = frozenset(),
    ) -> StoredAnnotation:
        t_now = ts(now)
        with self._write(durable=True) as conn:
            row = self._one(
                conn,
                f"SELECT {ANNOTATION_COLUMNS} FROM annotations"  # noqa: S608 - our own lock clause
                f" WHERE annotation_id = ?{self.FOR_UPDATE}",
                (annotation_id,),
            )
            if row is None:
                raise not_found("annotation")
            current = annotation_from_row(row)
            created = ts(current.created_at)
            rules.check_amend(current.annotator, created, annotator, t_now, window_s)
            before = current.content
            rules.keep_escalation(
                before.escalated,
                before.flags,
                content.flags,
                before.note,
                content.note,
                escalation_flags,
            )
            amendment_log.append(self, conn, annotation_id, annotator, t_now, before, content)
            self._x(
                conn,
                "UPDATE annotations SET transcript = ?, intent = ?, flags = ?, note = ?,"
                " escalated = CASE WHEN escalated = 1 OR ? = 1 THEN 1 ELSE 0 END,"
                " amended_at = ? WHERE annotation_id = ?",
                (
                    content.transcript,
                    content.intent,
                    json.dumps(list(content.flags)),
                    content.note,
                    int(content.escalated),
                    t_now,
                    annotation_id,
                ),
            )
            updated = self._one(
                conn,
                f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE annotation_id = ?",  # noqa: S608
                (annotation_id,),
            )
        return annotation_from_row(updated)

    def activity(self, annotator: str, since: datetime) -> list[Activity]:
        with self._read() as conn:
            rows = self._x(
                conn,
                "SELECT created_at, active_seconds FROM annotations"
                " WHERE annotator = ? AND created_at >= ? ORDER BY created_at",
                (annotator, ts(since)),
            ).fetchall()
        return [Activity(created_at=dt(r[0]), active_seconds=r[1]) for r in rows]

    def count_annotations(self, annotator: str) -> int:
        with self._read() as conn:
            row = self._one(
                conn, "SELECT COUNT(*) FROM annotations WHERE annotator = ?", (annotator,)
            )
        return int(row[0])

    EXPORT_SQL: ClassVar[str] = (  # noqa: S608 - our own column names
        "SELECT {cols}, c.source_name, c.locale, a.taxonomy_version, c.audio_deleted_at"
        " FROM annotations a JOIN clips c ON c.clip_id = a.clip_id ORDER BY a.created_at"
    ).format(cols=", ".join(f"a.{c.strip()}" for c in ANNOTATION_COLUMNS.split(",")))

    @staticmethod
    def export_row(row: Sequence[Any]) -> ExportRow:
        return ExportRow(
            annotation=annotation_from_row(row[:11]),
            source_name=row[11],
            locale=row[12],
            taxonomy_version=row[13],
            audio_deleted_at=dt(row[14]) if row[14] is not None else None,
        )

    # ------------------------------------------------------------------ db copy

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every row of `table` (one of `migrations.COPIED_TABLES`), columns in `columns` order."""
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def insert_rows(
        self,
        table: str,
        columns: list[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        replace: bool = False,
    ) -> None:
        """Insert rows copied from another database, in one durable transaction (`replace`:
        after deleting the table's rows)."""
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        with self._write(durable=True) as conn:
            if replace:
                self._x(conn, f"DELETE FROM {table}")  # noqa: S608 - our own table names
            for row in rows:
                self._x(conn, f"INSERT INTO {table} ({names}) VALUES ({marks})", row)  # noqa: S608

    def after_copy(self) -> None:
        """Whatever the backend needs once rows arrived with their own ids."""

    def is_empty(self) -> bool:
        with self._read() as conn:
            return all(
                self._one(conn, f"SELECT COUNT(*) FROM {t}")[0] == 0  # noqa: S608
                for t in ("clips", "annotations", "tokens", "leases")
            )


class ClipBatcher:
    """`add_clip` for `ingest_paths`'s one-clip-at-a-time callback, made durable in batches.

    Each call answers at once (None for audio already queued, else the clip id the clip WILL
    have) and holds the clip; every `ADD_CLIPS_BATCH` clips or `BATCH_BYTES` of audio, and at
    `flush()`, the held clips are stored as `add_clips` does (audio made durable together, rows
    in one durable transaction). The caller must `flush()` before reporting success: until then
    the answered ids are promises. A clip that another ingest queued in between is not stored
    twice; its promised id is then listed in `lost_to_race` (the audio is queued under the other
    id).
    """

    BATCH_BYTES = 64 * 1024 * 1024

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo
        self.lost_to_race: list[str] = []
        self._held: list[NewClip] = []
        self._ids: list[str] = []
        self._bytes = 0

    def add_clip(self, clip: NewClip) -> str | None:
        if any(c.sha256 == clip.sha256 for c in self._held) or self.repo._known_sha256(
            [clip.sha256]
        ):
            return None
        clip_id = new_id()
        self._held.append(clip)
        self._ids.append(clip_id)
        self._bytes += len(clip.audio)
        if len(self._held) >= ADD_CLIPS_BATCH or self._bytes >= self.BATCH_BYTES:
            self.flush()
        return clip_id

    def flush(self) -> None:
        held, ids = self._held, self._ids
        self._held, self._ids, self._bytes = [], [], 0
        if held:
            stored = self.repo._add_clip_batch(held, ids)
            self.lost_to_race += [i for i, got in zip(ids, stored, strict=True) if got is None]
