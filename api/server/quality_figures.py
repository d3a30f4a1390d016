"""The quality report at scale (issue 12: 100,000 annotations in under 2 s): each clip's figures
are worked out once and stored, and the report is SQL aggregates over them.

Stored (the tables of the quality-figures migration, `api.server.migrations`): per non-gold clip
with >= 2 annotations its `quality_rules.ClipFigures` (`quality_clips`, `quality_pairs`,
`quality_clip_flags`); per pair of people their `Agreement` (`quality_people_pairs`, bootstrap
intervals included: the costly part). Triggers on `annotations` mark a clip stale whenever an
annotation of it is added, amended or removed; `refresh` recomputes the stale clips, then the
pairs of people they touched, each batch in one write transaction (a mark made meanwhile survives:
it is taken inside the transaction that reads the annotations). The report refreshes first, so it
equals `quality_rules.build_report` over the same rows (tests/quality/test_figures.py holds it to
that, amendments and adjudications included).

Reading back: counts are SQL; means of pair WERs are `math.fsum` over fetched floats, as the
direct computation does; medians are picked by a window query.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from api.server.quality_rules import (
    SMALL_SAMPLE,
    Agreement,
    Estimate,
    Expected,
    Label,
    PairRow,
    PairUnit,
    Report,
    Thresholds,
    VolumeRow,
    agreement,
    by_clip,
    clip_figures,
    gold_score,
    hour_series,
    people_pairs,
    person_row,
    series_start,
)
from api.server.quality_store import _LABEL_SQL, QualityStore, _flags, label_from_row

#: Clips (then pairs of people) recomputed per write transaction.
BATCH = 500


_IN_FIGURES = (
    " WHERE EXISTS (SELECT 1 FROM quality_clips q WHERE q.clip_id = a.clip_id"
    " AND q.annotations >= 2)"
)
_NOT_GOLD = "NOT EXISTS (SELECT 1 FROM gold_clips g WHERE g.clip_id = a.clip_id)"

_MULTI = "q.annotations >= 2"
_DISAGREED = f"{_MULTI} AND (q.intents_differ = 1 OR q.flags_differ = 1 OR q.worst_wer > ?)"
#: Per locale or intent: annotations, clips, clips with >= 2 annotations, of those how many
#: disagree (`?`: the WER threshold), and annotations on those clips (an intent's n_c).
_LOCALES_SQL = f"""
SELECT q.locale, SUM(q.annotations), COUNT(*), SUM(CASE WHEN {_MULTI} THEN 1 ELSE 0 END),
       SUM(CASE WHEN {_DISAGREED} THEN 1 ELSE 0 END),
       SUM(CASE WHEN {_MULTI} THEN q.annotations ELSE 0 END)
  FROM quality_clips q GROUP BY q.locale
"""  # noqa: S608 - our own constants
_INTENTS_SQL = f"""
SELECT i.intent, SUM(i.n), COUNT(*), SUM(CASE WHEN {_MULTI} THEN 1 ELSE 0 END),
       SUM(CASE WHEN {_DISAGREED} THEN 1 ELSE 0 END),
       SUM(CASE WHEN {_MULTI} THEN i.n ELSE 0 END)
  FROM quality_clip_intents i JOIN quality_clips q ON q.clip_id = i.clip_id GROUP BY i.intent
"""  # noqa: S608 - our own constants


def _flag_list(flags: frozenset[str]) -> str:
    return json.dumps(sorted(flags))


class QualityFigures:
    def __init__(self, store: QualityStore) -> None:
        self.store = store
        self.repo = store.repo

    # ------------------------------------------------------------------ keeping them

    def refresh(self, batch: int = BATCH) -> tuple[int, int]:
        """Recompute every stale clip, then every pair of people whose clips changed.
        (clips, pairs of people) recomputed. A pair's stored figures hold every flag either
        person gave (the report keeps the taxonomy's)."""
        clips = pairs = 0
        while (done := self._refresh_clips(batch)) > 0:
            clips += done
        while (done := self._refresh_people_pairs(batch)) > 0:
            pairs += done
        return clips, pairs

    def _take(self, conn: Any, table: str, columns: str, batch: int) -> list[tuple[Any, ...]]:
        repo = self.repo
        rows = repo._x(
            conn,
            f"SELECT {columns} FROM {table} ORDER BY {columns} LIMIT ?{repo.FOR_UPDATE}",  # noqa: S608
            (batch,),
        ).fetchall()
        if rows:
            where = " AND ".join(f"{c.strip()} = ?" for c in columns.split(","))
            conn.cursor().executemany(
                repo._sql(f"DELETE FROM {table} WHERE {where}"),  # noqa: S608
                [tuple(r) for r in rows],
            )
        return [tuple(r) for r in rows]

    def _refresh_clips(self, batch: int) -> int:
        repo = self.repo
        with repo._write() as conn:
            taken = [r[0] for r in self._take(conn, "quality_stale", "clip_id", batch)]
            if not taken:
                return 0
            marks = ", ".join("?" for _ in taken)
            touched = {
                (r[0], r[1])
                for r in repo._x(
                    conn,
                    f"SELECT DISTINCT a, b FROM quality_pairs WHERE clip_id IN ({marks})",  # noqa: S608
                    taken,
                ).fetchall()
            }
            for table in (
                "quality_clips",
                "quality_pairs",
                "quality_clip_intents",
                "quality_clip_flags",
            ):
                repo._x(conn, f"DELETE FROM {table} WHERE clip_id IN ({marks})", taken)  # noqa: S608
            rows = repo._x(
                conn,
                _LABEL_SQL + f" WHERE a.clip_id IN ({marks}) AND {_NOT_GOLD}",
                taken,
            ).fetchall()
            figures = [clip_figures(g) for g in by_clip(label_from_row(r) for r in rows).values()]
            cur = conn.cursor()
            cur.executemany(
                repo._sql(
                    "INSERT INTO quality_clips (clip_id, locale, annotations,"
                    " intent_disagreement, intents_differ, flags_differ, worst_wer)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                [
                    (
                        f.clip_id,
                        f.locale,
                        f.annotations,
                        f.intent_disagreement,
                        int(f.intents_differ),
                        int(f.flags_differ),
                        f.worst_wer,
                    )
                    for f in figures
                ],
            )
            units = [u for f in figures for u in f.pairs]
            cur.executemany(
                repo._sql(
                    "INSERT INTO quality_pairs (clip_id, a, b, wer, intent_a, intent_b, flags_a,"
                    " flags_b) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [
                    (
                        u.clip_id,
                        u.a,
                        u.b,
                        u.wer,
                        u.intent_a,
                        u.intent_b,
                        _flag_list(u.flags_a),
                        _flag_list(u.flags_b),
                    )
                    for u in units
                ],
            )
            cur.executemany(
                repo._sql("INSERT INTO quality_clip_intents (clip_id, intent, n) VALUES (?, ?, ?)"),
                [(f.clip_id, intent, n) for f in figures for intent, n in f.intents.items()],
            )
            cur.executemany(
                repo._sql("INSERT INTO quality_clip_flags (clip_id, flag, yes) VALUES (?, ?, ?)"),
                [(f.clip_id, name, yes) for f in figures for name, yes in f.flag_yes.items()],
            )
            touched |= {(u.a, u.b) for u in units}
            cur.executemany(
                repo._sql(
                    "INSERT INTO quality_pairs_stale (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING"
                ),
                sorted(touched),
            )
        return len(taken)

    def _refresh_people_pairs(self, batch: int) -> int:
        repo = self.repo
        with repo._write() as conn:
            taken = [
                (str(a), str(b)) for a, b in self._take(conn, "quality_pairs_stale", "a, b", batch)
            ]
            if not taken:
                return 0
            wanted = set(taken)
            firsts = sorted({a for a, _ in taken})
            marks = ", ".join("?" for _ in firsts)
            shared: dict[tuple[str, str], list[PairUnit]] = defaultdict(list)
            for r in repo._x(
                conn,
                "SELECT clip_id, a, b, wer, intent_a, intent_b, flags_a, flags_b"  # noqa: S608
                f" FROM quality_pairs WHERE a IN ({marks})",
                firsts,
            ).fetchall():
                if (r[1], r[2]) in wanted:
                    shared[(r[1], r[2])].append(
                        PairUnit(
                            r[0], r[1], r[2], float(r[3]), r[4], r[5], _flags(r[6]), _flags(r[7])
                        )
                    )
            figures = people_pairs(shared, None)
            cur = conn.cursor()
            gone = [pair for pair in taken if pair not in figures]
            if gone:
                cur.executemany(
                    repo._sql("DELETE FROM quality_people_pairs WHERE a = ? AND b = ?"), gone
                )
            # An upsert, not delete + insert: on PostgreSQL another report may be writing the
            # same pair (marked again meanwhile); this one waits for it and writes the newer.
            cur.executemany(
                repo._sql(
                    "INSERT INTO quality_people_pairs (a, b, clips, mean_wer, intent_alpha,"
                    " intent_low, intent_high, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (a, b) DO UPDATE SET clips = excluded.clips,"
                    " mean_wer = excluded.mean_wer, intent_alpha = excluded.intent_alpha,"
                    " intent_low = excluded.intent_low, intent_high = excluded.intent_high,"
                    " flags = excluded.flags"
                ),
                [(a, b, *_pair_columns(f)) for (a, b), f in figures.items()],
            )
        return len(taken)

    # ------------------------------------------------------------------ reporting

    def report(
        self,
        flag_names: Sequence[str],
        limits: Thresholds,
        now: float | None = None,
    ) -> Report:
        """`quality_rules.build_report` over every annotation, from the stored figures."""
        self.refresh()
        known = set(flag_names)
        repo = self.repo
        with repo._read() as conn:
            base = repo._x(
                conn,
                "SELECT annotator, COUNT(*) FROM annotations GROUP BY annotator",
            ).fetchall()
            timed: dict[str, list[float]] = defaultdict(list)
            for who, seconds in repo._x(
                conn,
                "SELECT annotator, active_seconds FROM annotations"
                " WHERE active_seconds IS NOT NULL",
            ).fetchall():
                timed[who].append(float(seconds))
            gold_rows = repo._x(
                conn,
                "SELECT a.annotator, a.transcript, a.intent, a.flags, g.transcript, g.intent,"
                " g.flags FROM annotations a JOIN gold_clips g ON g.clip_id = a.clip_id",
            ).fetchall()
            pair_rows = repo._x(
                conn,
                "SELECT a, b, wer, CASE WHEN intent_a = intent_b THEN 1 ELSE 0 END, clip_id"
                " FROM quality_pairs",
            ).fetchall()
            locales = repo._x(conn, _LOCALES_SQL, (limits.max_pair_wer,)).fetchall()
            intents = repo._x(conn, _INTENTS_SQL, (limits.max_pair_wer,)).fetchall()
            units = repo._x(
                conn,
                "SELECT annotations, COUNT(*), SUM(intent_disagreement) FROM quality_clips"
                " WHERE annotations >= 2 GROUP BY annotations",
            ).fetchall()
            flag_rows = repo._x(
                conn,
                "SELECT f.flag, q.annotations, f.yes FROM quality_clip_flags f"
                " JOIN quality_clips q ON q.clip_id = f.clip_id WHERE q.annotations >= 2",
            ).fetchall()
            people_pairs_rows = repo._x(
                conn,
                "SELECT a, b, clips, mean_wer, intent_alpha, intent_low, intent_high, flags"
                " FROM quality_people_pairs",
            ).fetchall()
            series_rows = (
                repo._x(
                    conn,
                    "SELECT a.created_at, g.intent IS NOT NULL,"
                    " CASE WHEN a.intent = g.intent THEN 1 ELSE 0 END"
                    " FROM annotations a LEFT JOIN gold_clips g ON g.clip_id = a.clip_id"
                    " WHERE a.created_at >= ?",
                    (series_start(now),),
                ).fetchall()
                if now is not None
                else []
            )
            small = sum(int(r[1]) for r in units) < SMALL_SAMPLE
            small_labels = (
                [
                    label_from_row(r)
                    for r in repo._x(
                        conn,
                        _LABEL_SQL + _IN_FIGURES,
                    ).fetchall()
                ]
                if small
                else []
            )

        ordered = sorted(people_pairs_rows, key=lambda r: (r[0], r[1]))
        # Thousands of small JSON objects: parsed as one array, in one call.
        pair_flags = json.loads("[" + ",".join(str(r[7]) for r in ordered) + "]")
        gold_by: dict[str, list[tuple[Label, Expected]]] = defaultdict(list)
        for who, t, i, f, gt, gi, gf in gold_rows:
            got = Label("", "", who, t, i, _flags(f))
            gold_by[who].append((got, Expected(gt, gi, _flags(gf))))
        shared_wer: dict[str, list[float]] = defaultdict(list)
        shared_intent: dict[str, list[bool]] = defaultdict(list)
        shared_clips: dict[str, set[str]] = defaultdict(set)
        for a, b, w, same, clip in pair_rows:
            for who in (a, b):
                shared_wer[who].append(float(w))
                shared_intent[who].append(bool(same))
                shared_clips[who].add(clip)
        people = [
            person_row(
                who,
                int(clips),
                timed.get(who, []),
                gold_score(gold_by.get(who, []), flag_names),
                len(shared_clips[who]),
                shared_wer[who],
                shared_intent[who],
            )
            for who, clips in sorted(base)
        ]
        if small:
            overall = agreement(
                list(by_clip(small_labels).values()),
                flag_names,
                pair_wers=[float(r[2]) for r in pair_rows],
            )
        else:
            overall = _overall(
                units, [(r[0], int(r[5])) for r in intents], flag_rows, pair_rows, flag_names
            )
        return Report(
            people=people,
            locales=_volumes(locales),
            intents=_volumes(intents),
            overall=overall,
            pairs=[
                PairRow(r[0], r[1], _pair_figures(r[2:7], flags, known))
                for r, flags in zip(ordered, pair_flags, strict=True)
            ],
            series=hour_series(((float(t), bool(g), bool(c)) for t, g, c in series_rows), now)
            if now is not None
            else [],
        )


def _pair_columns(f: Agreement) -> tuple[Any, ...]:
    """A pair of people's `Agreement` as `quality_people_pairs` columns (clips .. flags)."""
    e = f.intent_alpha
    flags = {k: [v.value, v.units, v.low, v.high] for k, v in sorted(f.flag_alpha.items())}
    return f.clips, f.mean_pair_wer, e.value, e.low, e.high, json.dumps(flags)


def _number(x: Any) -> float | None:
    return None if x is None else float(x)


def _pair_figures(row: Sequence[Any], flags: dict[str, list[Any]], known: set[str]) -> Agreement:
    """`_pair_columns` read back (`flags` parsed): the pair's intent alpha counts `clips` units,
    as computed."""
    clips, mean_wer, value, low, high = row
    return Agreement(
        clips=int(clips),
        mean_pair_wer=float(mean_wer),
        intent_alpha=Estimate(_number(value), int(clips), _number(low), _number(high)),
        flag_alpha={
            k: Estimate(_number(v), int(n), _number(lo), _number(hi))
            for k, (v, n, lo, hi) in flags.items()
            if k in known
        },
    )


def _volumes(rows: Iterable[Sequence[Any]]) -> list[VolumeRow]:
    return [
        VolumeRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]))
        for r in sorted(rows, key=lambda r: str(r[0]))
    ]


def _alpha(n: float, disagreeing: float, values: Iterable[int], units: int) -> Estimate:
    """Nominal alpha from totals (`quality_rules._alpha_weighted` with unit weights): `n` values
    in pairable units, `disagreeing` = sum over units of o_u, `values` each value's total."""
    counts = [v for v in values if v]
    if units == 0 or len(counts) < 2:
        return Estimate(None, units)
    expected = n * n - math.fsum(float(c) * c for c in counts)
    if expected <= 0:
        return Estimate(None, units)
    return Estimate(1 - (n - 1) * disagreeing / expected, units)


def _overall(
    units: Sequence[Sequence[Any]],
    intent_totals: Sequence[tuple[str, int]],
    flag_rows: Sequence[Sequence[Any]],
    pair_rows: Sequence[Sequence[Any]],
    flag_names: Sequence[str],
) -> Agreement:
    """Agreement over >= `SMALL_SAMPLE` clips (no intervals there) from stored totals."""
    clips = sum(int(r[1]) for r in units)
    n = float(sum(int(r[0]) * int(r[1]) for r in units))
    # o_u = (n_u^2 - sum_c n_uc^2) / (n_u - 1): summed exactly per size, divided once per size.
    o = math.fsum(int(r[2]) / (int(r[0]) - 1) for r in units)
    yes: Counter[str] = Counter()
    flag_o: dict[str, list[float]] = defaultdict(list)
    for flag, size, y in flag_rows:
        yes[flag] += int(y)
        flag_o[flag].append(2 * int(y) * (int(size) - int(y)) / (int(size) - 1))
    wers = [float(r[2]) for r in pair_rows]
    return Agreement(
        clips=clips,
        mean_pair_wer=statistics.fmean(wers) if wers else None,
        intent_alpha=_alpha(n, o, (v for _, v in intent_totals), clips),
        flag_alpha={
            name: _alpha(n, math.fsum(flag_o[name]), (yes[name], int(n) - yes[name]), clips)
            for name in flag_names
        },
    )
