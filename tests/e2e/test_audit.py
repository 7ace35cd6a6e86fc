"""The DPO's side on a real network: verification, tampering, witnessing, access requests."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.audit.keys import log_origin, read_log_key
from betrokken.audit.log import AuditLog, LogBase, entry_from_leaf, leaf_bytes
from betrokken.audit.verify import verify_log
from betrokken.audit.witness import WitnessStore
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.db import make_engine
from betrokken.node.witness import witness_once
from tests.e2e.conftest import Running
from tests.harness import trail_written

pytestmark = pytest.mark.e2e


def _coordinator_db(running: Running) -> Path:
    return running.net.directory / "coordinator" / "coordinator.db"


def _copy_db(source: Path, target: Path) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def _copy_config(running: Running, db: Path, tmp: Path) -> Path:
    """A coordinator configuration reading a copy of its database."""
    folder = running.net.directory / "coordinator"
    config = tmp / "coordinator.toml"
    config.write_text(
        f'network = "{running.net.network_file}"\n'
        f'database = "sqlite:///{db}"\n'
        f'log_key = "{folder / "log.key"}"\n'
        "[tls]\n"
        f'certificate = "{folder / "coordinator.crt"}"\n'
        f'private_key = "{folder / "coordinator.key"}"\n'
        f'ca = "{running.net.directory / "ca" / "ca.crt"}"\n'
    )
    return config


def _open(running: Running, db: Path) -> AuditLog:
    return AuditLog(
        make_engine(f"sqlite:///{db}", LogBase.metadata),
        None,
        log_origin(running.network.name, "coordinator"),
    )


def _some_queries(running: Running) -> None:
    for bsn in list(running.named.values()) + running.truth.registrations[POLITIE][:3]:
        assert running.query(ZVH, bsn.digits, "zvh-triage", "CASE-AUDIT").code == 0


@pytest.fixture(scope="module")
def queried(running: Running) -> None:
    """Questions in the coordinator's log, asked once for the tampering tests of this module."""
    _some_queries(running)


@pytest.fixture
def tampered(running: Running, queried: None, tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """A copy of the coordinator's database (and a configuration reading it) to tamper with."""
    db = _copy_db(_coordinator_db(running), tmp_path / "copy.db")
    with sqlite3.connect(db) as conn:
        (size,) = conn.execute("select count(*) from log_records").fetchone()
    yield db, _copy_config(running, db, tmp_path), size


def _verify_cli(running: Running, config: Path) -> tuple[int, str]:
    result = running.run("audit", "verify", "--config", str(config), "--user", "test-dpo")
    return result.code, result.stdout + result.stderr


def test_the_live_log_verifies(running: Running) -> None:
    _some_queries(running)
    result = running.run("audit", "verify", "--config", str(running.net.coordinator_config))
    assert result.code == 0, result.stdout + result.stderr
    assert "nothing altered" in result.stdout


def test_changing_one_byte_of_a_record_is_caught(
    running: Running, tampered: tuple[Path, Path, int]
) -> None:
    db, config, size = tampered
    index = size // 2
    with sqlite3.connect(db) as conn:
        (content,) = conn.execute(
            'select content from log_records where "index" = ?', (index,)
        ).fetchone()
        changed = content.replace('"at":"2', '"at":"1', 1)
        assert changed != content
        conn.execute('update log_records set content = ? where "index" = ?', (changed, index))
    code, output = _verify_cli(running, config)
    assert code == 8
    assert f"first bad record index {index}" in output
    assert "altered" in output


def test_changing_a_record_and_its_leaf_hash_is_caught_by_the_checkpoints(
    running: Running, tampered: tuple[Path, Path, int]
) -> None:
    db, _, size = tampered
    index = size // 3
    with sqlite3.connect(db) as conn:
        (content,) = conn.execute(
            'select content from log_records where "index" = ?', (index,)
        ).fetchone()
        changed = content.replace('"user":"', '"user":"x', 1)
        conn.execute(
            'update log_records set content = ?, leaf_hash = ? where "index" = ?',
            (changed, merkle.leaf_hash(changed.encode()), index),
        )
    result = verify_log(_open(running, db), running.network.coordinator.log_key)
    assert result.first_bad_index == index
    assert any("do not match checkpoint" in p.message for p in result.problems)


def test_deleting_the_last_records_is_caught(
    running: Running, tampered: tuple[Path, Path, int]
) -> None:
    db, config, size = tampered
    with sqlite3.connect(db) as conn:
        conn.execute('delete from log_subjects where "index" >= ?', (size - 3,))
        conn.execute('delete from log_records where "index" >= ?', (size - 3,))
    code, output = _verify_cli(running, config)
    assert code == 8
    assert f"first bad record index {size - 3}" in output
    assert "removed" in output


def test_reordering_two_records_is_caught(
    running: Running, tampered: tuple[Path, Path, int]
) -> None:
    db, config, size = tampered
    first, second = size // 4, size // 2
    with sqlite3.connect(db) as conn:
        rows = {
            i: conn.execute(
                'select content, leaf_hash from log_records where "index" = ?', (i,)
            ).fetchone()
            for i in (first, second)
        }
        for target, source in ((first, second), (second, first)):
            conn.execute(
                'update log_records set content = ?, leaf_hash = ? where "index" = ?',
                (*rows[source], target),
            )
    code, output = _verify_cli(running, config)
    assert code == 8
    assert f"first bad record index {first}" in output
    assert "reordered" in output


def test_replacing_a_checkpoint_signature_is_caught(
    running: Running, tampered: tuple[Path, Path, int]
) -> None:
    db, config, size = tampered
    target = size - 5
    with sqlite3.connect(db) as conn:
        (note, root) = conn.execute(
            "select note, root from log_checkpoints where size = ?", (target,)
        ).fetchone()
        origin = log_origin(running.network.name, "coordinator")
        forged = sign_checkpoint(Checkpoint(origin, target, root), NoteKey.generate(origin))
        assert forged != note
        conn.execute("update log_checkpoints set note = ? where size = ?", (forged, target))
    code, output = _verify_cli(running, config)
    assert code == 8
    assert f"first bad record index {target - 1}" in output
    assert "signature" in output


# --- witnessing ---------------------------------------------------------------------------
@dataclass
class LocalSource:
    """The coordinator's log read from a (tampered) copy: transport aside, what a node sees."""

    log: AuditLog

    def checkpoint(self) -> str:
        latest = self.log.latest_checkpoint()
        return latest.note if latest else ""

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return self.log.consistency_proof(old_size, new_size)

    def consistency_many(self, old_sizes: list[int], new_size: int) -> list[list[bytes]]:
        return [self.log.consistency_proof(old, new_size) for old in old_sizes]


@contextmanager
def _coordinator_stopped(running: Running) -> Iterator[None]:
    running.cluster.stop_process("coordinator")
    try:
        yield
    finally:
        from betrokken.app.cluster import betrokken_command

        running.cluster._start(
            "coordinator",
            betrokken_command("coordinator", "serve", "--config", running.net.coordinator_config),
            running.network.coordinator.address,
        )


def test_a_node_witness_catches_a_rolled_back_log(running: Running, tmp_path: Path) -> None:
    config = str(running.net.node_configs[GEMEENTE])
    _some_queries(running)
    accepted = running.run("node", "witness", "--config", config, "--once")
    assert accepted.code == 0, accepted.stderr
    db = _coordinator_db(running)
    backup = tmp_path / "backup.db"
    with _coordinator_stopped(running):
        _copy_db(db, backup)
        log = _open(running, db)
        size = log.size()
        keep = size - 4
        frontier = merkle.Frontier()
        for leaf in log.leaf_hashes(keep):
            frontier.append(leaf)
        log.engine.dispose()
        with sqlite3.connect(db) as conn:  # an operator "cleaning up" the last records
            conn.execute('delete from log_subjects where "index" >= ?', (keep,))
            conn.execute('delete from log_records where "index" >= ?', (keep,))
            conn.execute("delete from log_checkpoints where size > ?", (keep,))
            conn.execute(
                "update log_head set size = ?, frontier = ?",
                (keep, json.dumps(frontier.to_json())),
            )
    try:
        alarm = running.run("node", "witness", "--config", config, "--once")
        status = running.run("node", "status", "--config", config)
    finally:
        with _coordinator_stopped(running):
            _copy_db(backup, db)  # restore in place (same file, so no stale locks)
    assert alarm.code == 8
    assert "rollback" in alarm.stderr and f"from {size}" in alarm.stderr
    assert "ALARMS" in status.stdout and "witness-rollback" in status.stdout
    # After the restore the log extends what was accepted again.
    assert running.run("node", "witness", "--config", config, "--once").code == 0


def test_a_node_witness_catches_a_forked_log(running: Running, tmp_path: Path) -> None:
    config = running.net.node_configs[RECLASSERING]
    _some_queries(running)
    assert running.run("node", "witness", "--config", str(config), "--once").code == 0
    node_copy = _copy_db(config.parent / "node.db", tmp_path / "node.db")
    engine = make_engine(f"sqlite:///{node_copy}", LogBase.metadata)
    witness = WitnessStore(engine, AuditLog(engine, None, RECLASSERING), RECLASSERING)
    accepted = witness.last()
    assert accepted is not None
    # Someone with the signing key rewrites history from record k and signs new checkpoints.
    fork = _copy_db(_coordinator_db(running), tmp_path / "fork.db")
    signer = read_log_key(
        running.net.directory / "coordinator" / "log.key", running.network.coordinator.log_key
    )
    log = AuditLog(make_engine(f"sqlite:///{fork}", LogBase.metadata), signer, signer.name)
    k = accepted.size - 2
    records = [r for r in log.records(start=k)]
    frontier = merkle.Frontier()
    for leaf in log.leaf_hashes(k):
        frontier.append(leaf)
    with sqlite3.connect(fork) as conn:
        conn.execute('delete from log_subjects where "index" >= ?', (k,))
        conn.execute('delete from log_records where "index" >= ?', (k,))
        conn.execute("delete from log_checkpoints where size > ?", (k,))
        conn.execute(
            "update log_head set size = ?, frontier = ?", (k, json.dumps(frontier.to_json()))
        )
    entries = []
    for record in records:
        assert record.content is not None
        _, entry = entry_from_leaf(record.content)
        entries.append(entry)
    from dataclasses import replace

    entries[0] = replace(entries[0], user="someone-else")
    entries.append(entries[-1])
    log.append(entries)
    assert leaf_bytes(k, entries[0]) != records[0].content.encode()  # type: ignore[union-attr]
    origin = log_origin(running.network.name, "coordinator")
    with pytest.raises(Exception) as info:
        witness_once(witness, LocalSource(log), running.network.coordinator.log_key, origin)
    assert "fork" in str(info.value)
    assert witness.alarms()[-1].kind == "witness-fork"


# --- the citizen's access request ---------------------------------------------------------------
def test_an_access_request_returns_exactly_the_records_about_that_person(
    running: Running, tmp_path: Path
) -> None:
    people = [b for b in running.truth.registrations[GGZ][5:8]]
    asked: dict[str, set[str]] = {b.digits: set() for b in people}
    plan = [
        (ZVH, "zvh-triage", people[0]),
        (POLITIE, "zsm-context", people[0]),
        (ZVH, "zvh-triage", people[1]),
        (POLITIE, "zsm-context", people[2]),
        (ZVH, "zvh-triage", people[0]),
    ]
    for org, purpose, bsn in plan:
        result = running.query(org, bsn.digits, purpose, f"CASE-{org}")
        assert result.code == 0
        asked[bsn.digits].add(result.json["answer_id"])
    letter = tmp_path / "letter.html"
    result = running.run(
        "audit",
        "subject",
        "--config",
        str(running.net.coordinator_config),
        "--bsn",
        people[0].digits,
        "--via",
        str(running.net.node_configs[ZVH]),
        "--out",
        str(letter),
        "--user",
        "fg.zvh",
    )
    running.typed.add(people[0].digits)
    assert result.code == 0, result.stderr
    indices = [int(i) for i in re.findall(r"\(record (\d+)\)", result.stdout)]
    with sqlite3.connect(_coordinator_db(running)) as conn:
        answer_ids = {
            conn.execute('select answer_id from log_records where "index" = ?', (i,)).fetchone()[0]
            for i in indices
        }
    assert answer_ids == asked[people[0].digits]
    assert len(indices) == 3  # three searches (their outcomes are shown with them)
    assert people[0].digits not in result.stdout
    assert people[0].masked() in result.stdout
    assert "zsm-context" in result.stdout and "zvh-triage" in result.stdout
    page = letter.read_text()
    assert people[0].digits not in page and "<table>" in page
    # The access request itself is a record in the log it read.
    with sqlite3.connect(_coordinator_db(running)) as conn:
        (content,) = conn.execute(
            'select content from log_records order by "index" desc limit 1'
        ).fetchone()
    last = json.loads(content)
    assert last["event"] == "log-access" and last["reason"] == "subject"
    assert last["user"] == "fg.zvh"


def test_the_report_shows_what_the_log_holds(running: Running, tmp_path: Path) -> None:
    from tests.audit.test_report import Page

    _some_queries(running)
    bsn = running.truth.registrations[RECLASSERING][9]
    for _ in range(3):  # the same person, the same case: a repeat-subject anomaly
        assert running.query(ZVH, bsn.digits, "zvh-triage", "CASE-REPEAT").code == 0
    for case in ("NOSY-A", "NOSY-B", "NOSY-C"):  # the same person under three cases
        assert running.query(ZVH, bsn.digits, "zvh-triage", case).code == 0
    out = tmp_path / "report.html"
    result = running.run(
        "audit", "report", "--config", str(running.net.coordinator_config), "--out", str(out)
    )
    assert result.code == 0, result.stderr
    text = out.read_text()
    page = Page()
    page.feed(text)
    with sqlite3.connect(_coordinator_db(running)) as conn:
        contents = [json.loads(c) for (c,) in conn.execute("select content from log_records")]
    searches = [c for c in contents if c["event"] == "search"]
    per_org: dict[str, int] = {}
    per_purpose: dict[str, int] = {}
    for record in searches:
        per_org[record["organisation"]] = per_org.get(record["organisation"], 0) + 1
        per_purpose[record["purpose"]] = per_purpose.get(record["purpose"], 0) + 1
    assert page.charts["per-organisation"] == per_org
    assert page.charts["per-purpose"] == per_purpose
    # Which person a question was about is sealed: the coordinator cannot see repeats...
    assert "repeat-subject" not in page.anomalies
    assert "audit log verified" in text
    for digits in running.all_bsns():
        assert digits not in text
    # ... the asking organisation's own trail can, and its DPO's report flags them.
    own = tmp_path / "zvh-report.html"
    result = running.run(
        "audit", "report", "--config", str(running.net.node_configs[ZVH]), "--out", str(own)
    )
    assert result.code == 0, result.stderr
    zvh_page = Page()
    zvh_page.feed(own.read_text())
    assert "repeat-subject" in zvh_page.anomalies
    assert "person-many-cases" in zvh_page.anomalies
    # "tester" typed with --user is no account of the ZVH's portal (it has none here).
    assert "unknown-user" in zvh_page.anomalies and "tester" in own.read_text()


def test_the_log_can_be_filtered_and_exported(running: Running) -> None:
    result = running.query(POLITIE, running.named["one"].digits, "zsm-context", "CASE-LOG")
    answer_id = result.json["answer_id"]
    config = str(running.net.coordinator_config)
    as_json = running.run(
        "audit",
        "log",
        "--config",
        config,
        "--organisation",
        POLITIE,
        "--format",
        "json",
        "--user",
        "fg.test",
    )
    assert as_json.code == 0, as_json.stderr
    rows = [r for r in json.loads(as_json.stdout) if r["answer_id"] == answer_id]
    assert [r["event"] for r in rows] == ["search", "outcome"]
    assert rows[0]["legal_basis"]
    assert all(r["organisation"] == POLITIE for r in json.loads(as_json.stdout))
    # The case is sealed from the coordinator; the asking organisation's trail has it.
    own = running.run(
        "audit",
        "log",
        "--config",
        str(running.net.node_configs[POLITIE]),
        "--case",
        "CASE-LOG",
        "--format",
        "json",
    )
    assert own.code == 0, own.stderr
    assert [(r["event"], r["answer_id"]) for r in json.loads(own.stdout)] == [
        ("own-query", answer_id)
    ]
    as_csv = running.run(
        "audit",
        "log",
        "--config",
        config,
        "--outcome",
        "refused",
        "--format",
        "csv",
    )
    assert as_csv.code == 0
    # Semicolons, as Excel expects them in a Dutch locale.
    assert as_csv.stdout.splitlines()[0].startswith("index;at;event;organisation;user")
    assert all(";refusal;" in line for line in as_csv.stdout.splitlines()[1:])
    text = running.run("audit", "log", "--config", config, "--event", "log-access")
    assert "fg.test" in text.stdout  # reading the log was itself recorded
    bad = running.run("audit", "log", "--config", config, "--since", "yesterday")
    assert bad.code == 2 and "YYYY-MM-DD" in bad.stderr


def test_a_node_trail_follows_the_question(running: Running) -> None:
    """Disclosures carry the answer id; the asking organisation keeps its own question."""
    bsn = running.named["several"]
    result = running.query(ZVH, bsn.digits, "zvh-triage", "CASE-TRACE")
    answer = result.json

    def trail(org: str) -> list[dict[str, object]]:
        db = running.net.node_configs[org].parent / "node.db"
        trail_written(db)
        with sqlite3.connect(db) as conn:
            return [json.loads(c) for (c,) in conn.execute("select content from log_records")]

    disclosures = [r for r in trail(POLITIE) if r["answer_id"] == answer["answer_id"]]
    assert [r["event"] for r in disclosures] == ["disclosure"]
    assert disclosures[0]["subjects"][0]["case"] == "CASE-TRACE"  # type: ignore[index]
    assert disclosures[0]["user"] == "tester" and disclosures[0]["role"] == "regisseur"
    assert disclosures[0]["organisation"] == ZVH and disclosures[0]["purpose"] == "zvh-triage"
    own = [r for r in trail(ZVH) if r["answer_id"] == answer["answer_id"]]
    assert [r["event"] for r in own] == ["own-query"]
    details = own[0]["details"]
    assert details["receipt_index"] == str(answer["receipt"]["leaf_index"])  # type: ignore[index]
    # Nodes that did not hit keep nothing about it; registrations are in the trail too.
    nowhere = running.query(ZVH, running.named["nowhere"].digits, "zvh-triage", "CASE-MISS2")
    assert not [r for r in trail(POLITIE) if r["answer_id"] == nowhere.json["answer_id"]]
    assert any(r["event"] == "registration-change" for r in trail(POLITIE))
    # A node's DPO verifies the node's own trail the same way.
    config = str(running.net.node_configs[POLITIE])
    verified = running.run("audit", "verify", "--config", config)
    assert verified.code == 0, verified.stdout + verified.stderr


def test_an_access_request_on_each_organisations_trail_finds_exactly_that_persons_records(
    running: Running,
) -> None:
    """In every organisation's own trail the person's records — own questions, disclosures,
    registration changes — and no others: the ones whose subject is the person's pseudonym under
    that organisation's key."""
    person = running.truth.registrations[GGZ][9]  # registered at the GGZ
    for org, purpose in ((ZVH, "zvh-triage"), (POLITIE, "zsm-context")):
        assert running.query(org, person.digits, purpose, f"CASE-TRAIL-{org}").code == 0
    assert running.query(ZVH, running.named["nowhere"].digits, "zvh-triage", "CASE-X").code == 0
    keys = running.keys
    for org in (ZVH, POLITIE, GGZ):
        pseudonym = keys.pseudonym(org, person.digits)
        mine, fingerprint = pseudonym.value.hex(), pseudonym.fingerprint
        db = running.net.node_configs[org].parent / "node.db"
        waited = time.monotonic() + 30
        with sqlite3.connect(db) as conn:
            # The node's trail writer keeps a question's records a moment after the answer: read
            # the trail once nothing waits in the outbox, or a record lands between read and search.
            while conn.execute(
                "select count(*) from answered_questions where outbox is not null"
            ).fetchone()[0]:
                assert time.monotonic() < waited, f"{org}'s trail writer never caught up"
                time.sleep(0.1)
            rows = conn.execute(
                'select "index", content from log_records where content is not null'
            ).fetchall()
        expected = {
            index
            for index, content in rows
            if any(
                s["pseudonym"] == mine or (not s["pseudonym"] and s["fingerprint"] == fingerprint)
                for s in json.loads(content)["subjects"]
            )
        }
        assert expected, org  # each has something about the person
        if org == GGZ:  # its import: one record for the batch, naming the person by fingerprint
            batch = [c for i, c in rows if i in expected and '"import_lines"' in c]
            assert len(batch) == 1, batch
        result = running.run(
            "audit",
            "subject",
            "--config",
            str(running.net.node_configs[org]),
            "--bsn",
            person.digits,
            "--user",
            f"fg.{org}",
        )
        running.typed.add(person.digits)
        assert result.code == 0, result.stderr
        found = {int(i) for i in re.findall(r"\(record (\d+)\)", result.stdout)}
        assert found == expected, (org, sorted(found ^ expected))
        assert person.digits not in result.stdout
