"""Versioned schema migrations, one list per backend, append-only: version N is `MIGRATIONS[N-1]`.

Both backends hold the same tables and columns at the same version (so `annotator db copy` is a
table-by-table copy). Times are unix seconds (REAL / double precision) from the server's
injectable clock, never the database's own `now()`, so tests can move time. Never edit a shipped
migration: add one.
"""

from __future__ import annotations

_SQLITE_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS clips (
    seq INTEGER PRIMARY KEY,               -- queue order (ingest order)
    clip_id TEXT NOT NULL UNIQUE,          -- random, opaque: the only id annotators see
    sha256 TEXT NOT NULL UNIQUE,
    media_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    locale TEXT NOT NULL,
    asr_hint TEXT,
    source_name TEXT,                      -- admin export only
    needed INTEGER NOT NULL,               -- K (the server's setting, applied at start)
    completed INTEGER NOT NULL DEFAULT 0,
    fence INTEGER NOT NULL DEFAULT 0,      -- bumped by every lease
    current_lease TEXT,                    -- the newest lease, while it may be live
    leased_until REAL,                     -- its expiry (unix seconds); NULL when nobody holds it
    created_at REAL NOT NULL
);
-- The claim scans only clips that still need work, in queue order.
CREATE INDEX IF NOT EXISTS clips_open ON clips(seq) WHERE completed < needed;

CREATE TABLE IF NOT EXISTS leases (
    lease_id TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    fence INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    released INTEGER NOT NULL DEFAULT 0,
    release_reason TEXT,                   -- a ReleaseReason, or 'submitted'
    release_detail TEXT
);
CREATE INDEX IF NOT EXISTS leases_clip_annotator ON leases(clip_id, annotator);

CREATE TABLE IF NOT EXISTS annotations (
    annotation_id TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    transcript TEXT NOT NULL,
    intent TEXT NOT NULL,
    flags TEXT NOT NULL,                   -- JSON list
    note TEXT,
    active_seconds REAL,
    status TEXT NOT NULL,
    escalated INTEGER NOT NULL DEFAULT 0,  -- sticky: escalations are never silently dropped
    taxonomy_version TEXT NOT NULL,
    created_at REAL NOT NULL,
    amended_at REAL,
    UNIQUE (annotator, idempotency_key),
    UNIQUE (clip_id, annotator)            -- never two annotations of a clip by one person
);
CREATE INDEX IF NOT EXISTS annotations_by_time ON annotations(annotator, created_at);
CREATE INDEX IF NOT EXISTS annotations_escalated ON annotations(created_at) WHERE escalated = 1;
CREATE INDEX IF NOT EXISTS annotations_created ON annotations(created_at);

CREATE TABLE IF NOT EXISTS tokens (
    token_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

#: Revocable tokens. Every process caches tokens briefly; `token_generation` (bumped by each
#: revocation) is what they poll to drop their cache within a second.
_V2 = """
ALTER TABLE tokens ADD COLUMN revoked_at {real};
CREATE INDEX tokens_by_name ON tokens(name);
INSERT INTO meta (key, value) VALUES ('token_generation', '0') ON CONFLICT (key) DO NOTHING;
"""

#: Machine drafts (`api.server.asr`): the draft's text goes in `asr_hint`, its words with their
#: confidences in `asr_words` as JSON text `[[word, confidence], ...]`; NULL when no engine drafted
#: the clip (so a hint given at ingest is told apart from a machine draft). TEXT, not jsonb, on
#: both backends: the server only stores and returns it, and `db copy` moves it as it is.
_V3 = """
ALTER TABLE clips ADD COLUMN asr_words TEXT;
"""

#: The supervisors' procedure (issue 11, `api.server.escalation_store`). An escalation is not a
#: row of its own: it is an escalated annotation or a lease released as `cannot_judge` (both
#: kept forever), so nothing on the submit path changes. Its lifecycle is the append-only
#: `escalation_events`: `transition_no` numbers an escalation's transitions 1, 2, ... and is
#: UNIQUE with it, so two supervisors acting at once cannot both move it (the second insert
#: does nothing and is told 409); plays of its audio have no number. `event_no` orders all
#: of an escalation's events (transitions and plays) as they were written. Triggers refuse every
#: UPDATE and DELETE of an audit event. `leases.released_at` dates a skip (its escalation's
#: service-level clock starts there).
_V_ESCALATION_COMMON = """
ALTER TABLE leases ADD COLUMN released_at {real};
CREATE INDEX leases_cannot_judge ON leases(clip_id) WHERE release_reason = 'cannot_judge';
CREATE TABLE escalation_events (
    event_id TEXT PRIMARY KEY,
    escalation_id TEXT NOT NULL,
    event_no INTEGER NOT NULL,
    transition_no INTEGER,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at {real} NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    outcome TEXT,
    note TEXT,
    UNIQUE (escalation_id, transition_no)
);
CREATE INDEX escalation_events_by_escalation ON escalation_events(escalation_id, event_no);
"""

_SQLITE_V_ESCALATION = (
    _V_ESCALATION_COMMON.format(real="REAL")
    + """
CREATE TRIGGER escalation_events_no_update BEFORE UPDATE ON escalation_events
BEGIN SELECT RAISE(ABORT, 'escalation_events is append-only'); END;
CREATE TRIGGER escalation_events_no_delete BEFORE DELETE ON escalation_events
BEGIN SELECT RAISE(ABORT, 'escalation_events is append-only'); END;
"""
)

_POSTGRES_V_ESCALATION = (
    _V_ESCALATION_COMMON.format(real="DOUBLE PRECISION")
    + """
CREATE FUNCTION escalation_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'escalation_events is append-only'; END $$;
CREATE TRIGGER escalation_events_no_change BEFORE UPDATE OR DELETE ON escalation_events
    FOR EACH ROW EXECUTE FUNCTION escalation_events_append_only();
CREATE TRIGGER escalation_events_no_truncate BEFORE TRUNCATE ON escalation_events
    FOR EACH STATEMENT EXECUTE FUNCTION escalation_events_append_only();
"""
)

#: Quality (issue 12, `api.server.quality_store`): gold answers, and each finished clip's
#: adjudication: `review` (its annotations disagree; a reviewer decides) or `final` (agreed, or
#: decided), with provenance (`decided_by`: 'auto' or the reviewer; `from_annotations`: JSON list
#: of the annotation ids it was decided from). Flags are JSON lists, as in `annotations`.
_V_QUALITY = """
CREATE TABLE gold_clips (
    clip_id TEXT PRIMARY KEY,
    transcript TEXT NOT NULL,
    intent TEXT NOT NULL,
    flags TEXT NOT NULL,
    imported_at {real} NOT NULL
);
CREATE TABLE adjudications (
    clip_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    reasons TEXT NOT NULL,
    transcript TEXT,
    intent TEXT,
    flags TEXT,
    note TEXT,
    decided_by TEXT,
    from_annotations TEXT NOT NULL,
    decided_at {real} NOT NULL
);
CREATE INDEX adjudications_by_state ON adjudications(state, decided_at);
"""

#: Issue 10 (findings 2, 3, 8, 10; notes/priv10.md):
#: - `people`: who a token belongs to. A person has a random `person_id` and a unique `name`
#:   (the name is what `leases.annotator` / `annotations.annotator` hold: unique and never
#:   reused for someone else, so it keys a person). Existing tokens are migrated by name: the
#:   same name becomes the same person. `tokens.expires_at` (NULL: never) is `token create
#:   --expires`.
#: - `amendments`: append-only history, one row per amend (who, when, the content before and
#:   after, as JSON `{transcript, intent, flags, note}`); nothing updates or deletes its rows.
#: - `leases_live`: the per-person live-lease count of the claim's cap.
#: - `clips.audio_deleted_at` / `audio_deleted_reason`: set when the retention policy deleted the
#:   clip's audio (`not_device_directed`, or `retention_days`); NULL while the audio is kept.
#:   Anything that exports or serves audio must check it (`api.server.retention`).
_V_PEOPLE = """
CREATE TABLE people (
    person_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at {real} NOT NULL
);
INSERT INTO people (person_id, name, created_at)
    SELECT {random_id}, name, MIN(created_at) FROM tokens GROUP BY name;
ALTER TABLE tokens ADD COLUMN person_id TEXT;
ALTER TABLE tokens ADD COLUMN expires_at {real};
UPDATE tokens SET person_id = (SELECT p.person_id FROM people p WHERE p.name = tokens.name);
CREATE INDEX tokens_by_person ON tokens(person_id);
CREATE TABLE amendments (
    seq {seq} PRIMARY KEY,
    annotation_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    amended_at {real} NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL
);
CREATE INDEX amendments_by_annotation ON amendments(annotation_id, seq);
CREATE INDEX leases_live ON leases(annotator, expires_at) WHERE released = 0;
ALTER TABLE clips ADD COLUMN audio_deleted_at {real};
ALTER TABLE clips ADD COLUMN audio_deleted_reason TEXT;
"""

#: Welfare (issue 11): categories a person opts out of (not served clips an earlier annotator
#: flagged so, when K > 1), and the breaks the policy imposed (append-only: who, from, to, why).
_WELFARE = """
CREATE TABLE welfare_opt_outs (
    person TEXT NOT NULL,
    category TEXT NOT NULL,
    flag_pattern TEXT NOT NULL,            -- LIKE pattern over annotations.flags: '%"minor"%'
    created_at {real} NOT NULL,
    PRIMARY KEY (person, category)
);
CREATE TABLE welfare_breaks (
    person TEXT NOT NULL,
    started_at {real} NOT NULL,
    ends_at {real} NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (person, started_at)
);
"""

#: Quality figures (issue 12, `api.server.quality_figures`): what the report needs of each clip
#: and each pair of people, worked out once and kept, so the report over 100,000 annotations is
#: SQL aggregates rather than every annotation read again. `quality_clips` (one row per non-gold
#: clip with annotations: locale, how many, how they disagree), `quality_clip_intents` and
#: `quality_clip_flags` (how many of its annotations give each intent, carry each flag),
#: `quality_pairs` (each pair of its annotations: both people, the pair's WER, intents, flags),
#: `quality_people_pairs` (a pair of people's agreement, intervals included; per flag a JSON
#: object flag -> [alpha, clips, low, high]). Triggers on `annotations` (insert, the amendable
#: columns, delete) put the clip into `quality_stale`; the figures code recomputes stale clips,
#: and the pairs of people they touch (`quality_pairs_stale`), before it reports. Existing clips
#: start stale. Not copied by `db copy`: the copied annotations make every clip stale there.
_V_QUALITY_FIGURES = """
CREATE TABLE quality_stale (clip_id TEXT PRIMARY KEY);
CREATE TABLE quality_pairs_stale (a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b));
CREATE TABLE quality_clips (
    clip_id TEXT PRIMARY KEY,
    locale TEXT NOT NULL,
    annotations INTEGER NOT NULL,
    intent_disagreement INTEGER NOT NULL,
    intents_differ INTEGER NOT NULL,
    flags_differ INTEGER NOT NULL,
    worst_wer {real} NOT NULL
);
CREATE TABLE quality_pairs (
    clip_id TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    wer {real} NOT NULL,
    intent_a TEXT NOT NULL,
    intent_b TEXT NOT NULL,
    flags_a TEXT NOT NULL,
    flags_b TEXT NOT NULL,
    PRIMARY KEY (clip_id, a, b)
);
CREATE INDEX quality_pairs_by_people ON quality_pairs(a, b);
CREATE TABLE quality_clip_intents (
    clip_id TEXT NOT NULL,
    intent TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (clip_id, intent)
);
CREATE TABLE quality_clip_flags (
    clip_id TEXT NOT NULL,
    flag TEXT NOT NULL,
    yes INTEGER NOT NULL,
    PRIMARY KEY (clip_id, flag)
);
CREATE TABLE quality_people_pairs (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    clips INTEGER NOT NULL,
    mean_wer {real} NOT NULL,
    intent_alpha {real},
    intent_low {real},
    intent_high {real},
    flags TEXT NOT NULL,
    PRIMARY KEY (a, b)
);
INSERT INTO quality_stale (clip_id) SELECT DISTINCT clip_id FROM annotations;
"""

_SQLITE_QUALITY_TRIGGERS = """
CREATE TRIGGER annotations_quality_insert AFTER INSERT ON annotations
BEGIN INSERT OR IGNORE INTO quality_stale (clip_id) VALUES (NEW.clip_id); END;
CREATE TRIGGER annotations_quality_update
    AFTER UPDATE OF clip_id, annotator, transcript, intent, flags ON annotations
BEGIN
    INSERT OR IGNORE INTO quality_stale (clip_id) VALUES (OLD.clip_id);
    INSERT OR IGNORE INTO quality_stale (clip_id) VALUES (NEW.clip_id);
END;
CREATE TRIGGER annotations_quality_delete AFTER DELETE ON annotations
BEGIN INSERT OR IGNORE INTO quality_stale (clip_id) VALUES (OLD.clip_id); END;
"""
_SQLITE_V_QUALITY_FIGURES = _V_QUALITY_FIGURES.format(real="REAL") + _SQLITE_QUALITY_TRIGGERS

_POSTGRES_QUALITY_TRIGGERS = """
CREATE FUNCTION annotations_quality_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO quality_stale (clip_id) VALUES (OLD.clip_id) ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO quality_stale (clip_id) VALUES (NEW.clip_id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER annotations_quality
    AFTER INSERT OR DELETE OR UPDATE OF clip_id, annotator, transcript, intent, flags
    ON annotations FOR EACH ROW EXECUTE FUNCTION annotations_quality_stale();
"""
_POSTGRES_V_QUALITY_FIGURES = (
    _V_QUALITY_FIGURES.format(real="DOUBLE PRECISION") + _POSTGRES_QUALITY_TRIGGERS
)

#: Intent models (issue 13, `api.server.intents.model_store`): every trained version, in the
#: database every `serve` process reads, so all of them suggest from the same one. `model` is
#: the classifier's arrays as .npz bytes (loaded with allow_pickle=False: never code); `report`
#: the JSON of its training numbers (rows, gold left out, held-out top-1/top-3 beside the cold
#: start's); `deployed` 1 when it did at least as well as the cold start on the held-out rows.
_INTENT_MODELS = """
CREATE TABLE intent_models (
    version INTEGER PRIMARY KEY,
    created_at {real} NOT NULL,
    deployed INTEGER NOT NULL,
    report TEXT NOT NULL,
    model {blob} NOT NULL
);
"""

#: Idempotent lease requests (branch robust): a claim sent with an `Idempotency-Key` stores the key
#: on every lease it granted, so a retry of a request whose answer was lost is answered with the
#: same leases while they live (the key expires with them: nothing to sweep).
_LEASE_REQUESTS = """
ALTER TABLE leases ADD COLUMN request_key TEXT;
CREATE INDEX leases_by_request ON leases(annotator, request_key) WHERE request_key IS NOT NULL;
"""

#: PostgreSQL's guard for writes sent without waiting for their counts (`postgres_repo`: the
#: submit's writes travel with its COMMIT): a row that moved under the transaction raises, with
#: its own SQLSTATE, and the transaction rolls back instead of committing half of it. SQLite
#: reads its counts before COMMIT and needs none (its step is empty).
_POSTGRES_WRITE_GUARD = """
CREATE FUNCTION annotator_expect(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '%', what USING ERRCODE = 'AN409';
    END IF;
    RETURN true;
END $$;
"""
_SQLITE_WRITE_GUARD = "SELECT 1;"

#: PostgreSQL's serialised count for a lone claim (`postgres_repo._locked_claim_head`): the
#: person's advisory lock (held to the end of the claim's transaction), then the person's live
#: leases (when `count_live`) and the live leases of `key`'s request (when not NULL). A VOLATILE
#: function's queries each take a new snapshot, after the lock was granted: they see the leases
#: of the claim of the same person that held it. SQLite serialises its writers and needs none.
_POSTGRES_PERSON_COUNTS = """
CREATE FUNCTION annotator_person_counts(
    person text, now_ts double precision, key text, count_live boolean,
    OUT live bigint, OUT replayed bigint
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(person, 0));
    live := 0;
    replayed := 0;
    IF count_live THEN
        SELECT COUNT(*) INTO live FROM leases AS l
         WHERE l.annotator = person AND l.released = 0 AND l.expires_at > now_ts;
    END IF;
    IF key IS NOT NULL THEN
        SELECT COUNT(*) INTO replayed FROM leases AS l
         WHERE l.annotator = person AND l.request_key = key AND l.released = 0
           AND l.expires_at > now_ts;
    END IF;
END $$;
"""

SQLITE_MIGRATIONS: tuple[str, ...] = (
    _SQLITE_V1,
    _V2.format(real="REAL"),
    _V3,
    _SQLITE_V_ESCALATION,
    _V_QUALITY.format(real="REAL"),
    _V_PEOPLE.format(real="REAL", seq="INTEGER", random_id="lower(hex(randomblob(12)))"),
    _WELFARE.format(real="REAL"),
    _SQLITE_V_QUALITY_FIGURES,
    _INTENT_MODELS.format(real="REAL", blob="BLOB"),
    _LEASE_REQUESTS,
    _SQLITE_WRITE_GUARD,
    "SELECT 1;",  # PostgreSQL's `annotator_person_counts`
)

_POSTGRES_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE clips (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    clip_id TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL UNIQUE,
    media_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    locale TEXT NOT NULL,
    asr_hint TEXT,
    source_name TEXT,
    needed INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    fence BIGINT NOT NULL DEFAULT 0,
    current_lease TEXT,
    leased_until DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX clips_open ON clips(seq) WHERE completed < needed;

CREATE TABLE leases (
    lease_id TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    fence BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    released INTEGER NOT NULL DEFAULT 0,
    release_reason TEXT,
    release_detail TEXT
);
CREATE INDEX leases_clip_annotator ON leases(clip_id, annotator);

CREATE TABLE annotations (
    annotation_id TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    transcript TEXT NOT NULL,
    intent TEXT NOT NULL,
    flags TEXT NOT NULL,
    note TEXT,
    active_seconds DOUBLE PRECISION,
    status TEXT NOT NULL,
    escalated INTEGER NOT NULL DEFAULT 0,
    taxonomy_version TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    amended_at DOUBLE PRECISION,
    UNIQUE (annotator, idempotency_key),
    UNIQUE (clip_id, annotator)
);
CREATE INDEX annotations_by_time ON annotations(annotator, created_at);
CREATE INDEX annotations_escalated ON annotations(created_at) WHERE escalated = 1;
CREATE INDEX annotations_created ON annotations(created_at);

CREATE TABLE tokens (
    token_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

-- The shared audio store (see api.server.audio_store): clips are already compressed or short,
-- so skip TOAST compression and keep the bytes out of line.
CREATE TABLE audio (sha256 TEXT PRIMARY KEY, data BYTEA NOT NULL);
ALTER TABLE audio ALTER COLUMN data SET STORAGE EXTERNAL;
"""

POSTGRES_MIGRATIONS: tuple[str, ...] = (
    _POSTGRES_V1,
    _V2.format(real="DOUBLE PRECISION"),
    _V3,
    _POSTGRES_V_ESCALATION,
    _V_QUALITY.format(real="DOUBLE PRECISION"),
    _V_PEOPLE.format(
        real="DOUBLE PRECISION",
        seq="BIGINT GENERATED BY DEFAULT AS IDENTITY",
        random_id="substr(md5(random()::text || name), 1, 24)",
    ),
    _WELFARE.format(real="DOUBLE PRECISION"),
    _POSTGRES_V_QUALITY_FIGURES,
    _INTENT_MODELS.format(real="DOUBLE PRECISION", blob="BYTEA"),
    _LEASE_REQUESTS,
    _POSTGRES_WRITE_GUARD,
    _POSTGRES_PERSON_COUNTS,
)

assert len(SQLITE_MIGRATIONS) == len(POSTGRES_MIGRATIONS)
SCHEMA_VERSION = len(SQLITE_MIGRATIONS)

#: The tables `annotator db copy` moves, parents first (audio is copied through the stores).
COPIED_TABLES = (
    "meta",
    "clips",
    "leases",
    "annotations",
    "people",
    "tokens",
    "amendments",
    "escalation_events",
    "gold_clips",
    "adjudications",
    "welfare_opt_outs",
    "welfare_breaks",
    "intent_models",
)
