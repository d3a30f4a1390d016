"""`annotator gold import`, `annotator report` and `annotator export --format ...` as real
commands (subprocesses) against a queue the real server filled (issue 12), on both backends.

The hf-audiofolder export is loaded back with Hugging Face `datasets` (its `audiofolder` loader);
the Label Studio export is checked against Label Studio's documented task format
(labelstud.io/guide/task_format: a list of tasks, each `data` with the `$audio` value and
`annotations[].result[]` items of `from_name`/`to_name`/`type`/`value`, `textarea` values as
`{"text": [...]}` and `choices` values as `{"choices": [...]}`).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import datasets
import pytest
import soundfile

from api.models import Role
from tests.fixtures.server import ClockedServer, run_annotator
from tests.server.helpers import body, key


def _db_args(server: ClockedServer) -> list[str]:
    return ["--db", server.settings.database_url, "--data", str(server.settings.data_dir)]


def _export(server: ClockedServer, fmt: str, out: Path) -> subprocess.CompletedProcess[str]:
    home = out.parent / "home"
    return run_annotator("export", "--format", fmt, "--out", str(out), *_db_args(server), home=home)


def _annotate(server: ClockedServer, who: str, answers: dict[str, dict[str, Any]]) -> None:
    with server.client(server.token(who)) as c:
        r = c.post("/v1/leases", json={"count": len(answers)})
        for lease in r.json()["leases"]:
            fields = answers[lease["clip"]["sha256"]]
            r = c.post(
                "/v1/annotations", json=body(lease, **fields), headers={"Idempotency-Key": key()}
            )
            assert r.status_code == 201, r.text
    server.clock.advance(1)


def test_gold_import_reports_bad_lines_and_imports_the_rest(
    make_clocked_server: Callable[..., ClockedServer],
    test_wavs: Callable[..., list[Path]],
    tmp_path: Path,
) -> None:
    server = make_clocked_server()
    paths = test_wavs(3)
    ids = server.ingest(paths)
    with server.client(server.token("a")) as c:
        shas = {
            x["clip"]["clip_id"]: x["clip"]["sha256"]
            for x in c.post("/v1/leases", json={"count": 3}).json()["leases"]
        }
    lines = [
        {"clip": paths[0].name, "transcript": "wake me up", "intent": "alarm_set"},
        {"sha256": shas[ids[1]], "transcript": "", "intent": "no_speech", "flags": []},
        "{not json",
        {"clip": paths[2].name, "transcript": "x", "intent": "no_such_intent"},
        {"clip": "never-ingested.wav", "transcript": "x", "intent": "alarm_set"},
        {"clip": shas[ids[0]], "transcript": "again", "intent": "alarm_set"},
        {"clip": paths[2].name, "transcript": "x", "intent": "alarm_set", "flags": ["nope"]},
    ]
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    done = run_annotator("gold", "import", str(gold), *_db_args(server), home=tmp_path / "h")
    assert done.returncode == 1, done.stderr
    err = done.stderr
    for number, words in (
        (3, "not JSON"),
        (4, "unknown intent"),
        (5, "no queued clip"),
        (6, "same clip as line 1"),
        (7, "unknown flag"),
    ):
        assert f"gold.jsonl:{number}: " in err and words in err, err
    assert "imported 2 gold clips" in err
    assert "Traceback" not in err
    from api.server.quality_store import QualityStore

    assert set(QualityStore(server.repo).gold()) == {ids[0], ids[1]}
    missing = run_annotator(
        "gold", "import", str(tmp_path / "nope.jsonl"), *_db_args(server), home=tmp_path / "h"
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr


@pytest.fixture
def finished_queue(
    make_clocked_server: Callable[..., ClockedServer], test_wavs: Callable[..., list[Path]]
) -> tuple[ClockedServer, dict[str, str]]:
    """Five clips, K = 2, two annotators: two agree, one agrees on an escalation, one disagrees
    (decided by a reviewer), one's audio was deleted by retention. sha256 → clip id."""
    server = make_clocked_server(annotations_per_clip=2, gold_rate=0.0)
    ids = server.ingest(test_wavs(5))
    with server.client(server.token("peek")) as c:
        leases = c.post("/v1/leases", json={"count": 5}).json()["leases"]
        for lease in leases:
            c.post(f"/v1/leases/{lease['lease_id']}/release", json={"reason": "unused"})
    sha = {x["clip"]["clip_id"]: x["clip"]["sha256"] for x in leases}
    plain = {"transcript": "wake me up at seven", "intent": "alarm_set"}
    hurt = {"transcript": "help me", "intent": "alarm_set", "flags": ["distress"], "note": "n"}
    first = {sha[ids[0]]: plain, sha[ids[1]]: plain, sha[ids[2]]: hurt, sha[ids[3]]: plain}
    first[sha[ids[4]]] = plain
    second = dict(first)
    second[sha[ids[3]]] = {"transcript": "wake me up at seven", "intent": "alarm_query"}
    _annotate(server, "ann", first)
    _annotate(server, "bob", second)
    with server.client(server.token("rev", Role.REVIEWER)) as c:
        (item,) = c.get("/v1/reviews").json()["items"]
        assert item["clip_id"] == ids[3]
        r = c.post(
            f"/v1/reviews/{ids[3]}/final",
            json={"transcript": "wake me up at 7", "intent": "alarm_query"},
        )
        assert r.status_code == 201
    # Retention deleted clip 4's audio (priv10's retention removes the stored bytes).
    audio = server.repo.audio
    if hasattr(audio, "path_for"):
        audio.path_for(sha[ids[4]]).unlink()
    else:
        with server.repo._write() as conn:
            server.repo._x(conn, "DELETE FROM audio WHERE sha256 = ?", (sha[ids[4]],))
    return server, {v: k for k, v in sha.items()}


def test_hf_audiofolder_round_trips_through_datasets(
    finished_queue: tuple[ClockedServer, dict[str, str]], tmp_path: Path
) -> None:
    server, clip_of = finished_queue
    out = tmp_path / "hf"
    done = _export(server, "hf-audiofolder", out)
    assert done.returncode == 0, done.stderr
    assert (
        "without audio (escalated)" in done.stderr
        and "without audio (audio deleted)" in done.stderr
    )
    ds = datasets.load_dataset(
        "audiofolder", data_dir=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    # datasets 3.x decodes with librosa, which the dev extra leaves out: read the files ourselves.
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    rows = {r["clip_id"]: r for r in ds}
    by_sha = {v: k for k, v in clip_of.items()}
    assert len(rows) == 3  # 5 finals less the escalated one and the deleted one
    for clip_id, row in rows.items():
        data = Path(row["audio"]["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == by_sha[clip_id]  # the served bytes
        samples, rate = soundfile.read(row["audio"]["path"])
        assert rate == 16_000 and len(samples) > 0
    reviewed = [r for r in rows.values() if r["decision"] == "reviewed"]
    assert [(r["transcription"], r["intent"]) for r in reviewed] == [
        ("wake me up at 7", "alarm_query")
    ]
    text = (out / "metadata.jsonl").read_text()
    assert '"ann"' not in text and '"rev"' not in text and "source_name" not in text
    for f in out.iterdir():
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f


def test_label_studio_tasks_follow_the_documented_format(
    finished_queue: tuple[ClockedServer, dict[str, str]], tmp_path: Path
) -> None:
    server, _ = finished_queue
    out = tmp_path / "ls"
    done = _export(server, "label-studio", out)
    assert done.returncode == 0, done.stderr
    tasks = json.loads((out / "tasks.json").read_text())
    assert isinstance(tasks, list) and len(tasks) == 3
    config = (out / "label_config.xml").read_text()
    choices = {
        tag.get("name"): {c.get("value") for c in tag.findall("Choice")}
        for tag in ElementTree.fromstring(config).iter("Choices")
    }
    for task in tasks:
        assert set(task) >= {"data", "annotations"}
        audio = task["data"]["audio"]
        assert (out / audio).is_file() and "$audio" in config
        (annotation,) = task["annotations"]
        kinds = {}
        for result in annotation["result"]:
            assert set(result) >= {"from_name", "to_name", "type", "value"}
            assert result["to_name"] == "audio" and f'name="{result["from_name"]}"' in config
            kinds[result["from_name"]] = result
        assert kinds["transcription"]["type"] == "textarea"
        assert isinstance(kinds["transcription"]["value"]["text"], list)
        assert kinds["intent"]["type"] == "choices"
        assert len(kinds["intent"]["value"]["choices"]) == 1
        # Label Studio shows a <Choices> tag's <Choice> children: the config had none, so an
        # imported task could be neither read back against its labels nor re-labelled.
        for name in ("intent", "flags"):
            for value in kinds.get(name, {"value": {"choices": []}})["value"]["choices"]:
                assert value in choices[name], (name, value)
    assert {"no_speech", "alarm_set"} <= choices["intent"]
    assert {"distress", "pii"} <= choices["flags"]
    reviewed = [t for t in tasks if t["annotations"][0]["ground_truth"]]
    assert len(reviewed) == 1
    assert reviewed[0]["annotations"][0]["result"][0]["value"]["text"] == ["wake me up at 7"]


def test_final_jsonl_holds_every_final_without_identifiers(
    finished_queue: tuple[ClockedServer, dict[str, str]], tmp_path: Path
) -> None:
    server, _ = finished_queue
    done = run_annotator("export", "--final", *_db_args(server), home=tmp_path / "h")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(rows) == 5  # text only: the escalated and the deleted clips' finals too
    assert sorted(r["decision"] for r in rows) == ["agreed"] * 4 + ["reviewed"]
    assert "source_name" not in done.stdout and '"ann"' not in done.stdout


def test_report_command_prints_tables_and_json(
    finished_queue: tuple[ClockedServer, dict[str, str]], tmp_path: Path
) -> None:
    server, _ = finished_queue
    table = run_annotator("report", *_db_args(server), home=tmp_path / "h")
    assert table.returncode == 0, table.stderr
    assert "People" in table.stdout and "ann" in table.stdout and "Agreement" in table.stdout
    as_json = run_annotator("report", "--format", "json", *_db_args(server), home=tmp_path / "h")
    report = json.loads(as_json.stdout)
    people = {p["annotator"]: p for p in report["people"]}
    assert people["ann"]["clips"] == 5 and people["bob"]["clips"] == 5
    assert people["ann"]["intent_agreement"] == pytest.approx(4 / 5)
    assert report["overall"]["clips"] == 5


@pytest.mark.one_backend
def test_review_with_an_annotators_token_says_which_token_it_needs(
    clocked_server: ClockedServer, tmp_path: Path
) -> None:
    """`annotator review` with an annotator's token opened nine empty cards under "loading…"
    and "cannot load the review queue: 403 forbidden_role: this needs the reviewer or…"."""
    env = {"ANNOTATOR_SERVER": clocked_server.url, "ANNOTATOR_AUDIO": "none"}
    for token, said in (
        (clocked_server.token("ann"), "needs a reviewer's, a supervisor's or an admin's token"),
        ("not-a-token", "the server refused the token"),
    ):
        done = run_annotator("review", home=tmp_path / "h", env={**env, "ANNOTATOR_TOKEN": token})
        assert done.returncode == 2, done.stdout[-500:]
        assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
