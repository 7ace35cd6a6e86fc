"""End-to-end, on real processes: the work after the hit.

* **Both professionals told** (docs/adr/0024, section 7): a hit at a level that names or points to
  the found partner leaves exactly one notice at that partner's node, with who asked, for whom,
  why, for which case, when, how to reach the asker and the partner's own reference; a miss leaves
  none anywhere. The insider's view: a notice holds nothing of the asker's other answers (the
  other persons of the question, what other partners answered).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from betrokken.app.demo import GGZ, POLITIE, ZVH
from betrokken.config.load import load_node
from betrokken.crypto.bsn import Bsn
from betrokken.node import notices
from betrokken.node.server import open_store
from tests.e2e.conftest import Running
from tests.harness import trail_written


def _db(running: Running, org: str) -> Path:
    return running.net.node_configs[org].parent / "node.db"


@contextmanager
def _notices_of(running: Running, org: str) -> Iterator[list[notices.Notice]]:
    trail_written(_db(running, org))
    store = open_store(load_node(running.net.node_configs[org]))
    try:
        yield notices.list_notices(store.engine)
    finally:
        store.engine.dispose()


def only_at(running: Running, org: str) -> tuple[Bsn, int]:
    """Someone registered at ``org`` and nowhere else, and their place in its export."""
    for place, bsn in enumerate(running.truth.registrations[org], start=1):
        if running.truth.where(bsn) == {org}:
            return bsn, place
    raise AssertionError(f"the population has nobody registered only at {org}")


def _case(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(4).upper()}"


@pytest.mark.e2e
def test_p10_a_hit_leaves_exactly_one_notice_at_the_found_partner_and_a_miss_none(
    running: Running,
) -> None:
    bsn, place = only_at(running, POLITIE)
    hit_case, miss_case = _case("MELDING"), _case("GEEN")
    asked = running.query(ZVH, bsn.digits, "zvh-triage", hit_case)
    assert asked.code == 0, asked.output
    missed = running.query(ZVH, running.named["nowhere"].digits, "zvh-triage", miss_case)
    assert missed.code == 0, missed.output

    with _notices_of(running, POLITIE) as found:
        mine = [n for n in found if n.case == hit_case]
        assert len(mine) == 1, mine
        [notice] = mine
        assert notice.requester == ZVH and notice.on_behalf_of == ZVH
        assert notice.role == "regisseur" and notice.purpose == "zvh-triage"
        assert notice.level == "organisation"
        assert notice.reference == f"CASE-{place:05d}"  # the export's own reference
        zvh = running.network.organisation(ZVH)
        assert zvh is not None and notice.asker_contact == zvh.contact
        assert notice.unread and notice.acknowledged_at is None
        assert not [n for n in found if n.case == miss_case]
    # The answer id ties the notice to the disclosure record in the same trail.
    with sqlite3.connect(_db(running, POLITIE)) as conn:
        (disclosed,) = conn.execute(
            "select count(*) from log_records where event = 'disclosure' and answer_id = ?",
            (notice.answer_id,),
        ).fetchone()
    assert disclosed == 1
    # Nobody else keeps a notice of either question.
    for org in running.network.nodes():
        if org.id == POLITIE:
            continue
        with _notices_of(running, org.id) as elsewhere:
            assert not [n for n in elsewhere if n.case in (hit_case, miss_case)], org.id


@pytest.mark.e2e
def test_p10_insider_a_notice_holds_nothing_of_the_askers_other_answers(
    running: Running, tmp_path: Path
) -> None:
    """The found partner's insider reads every column of its notices table: it finds the one
    person it knows, never the other persons of the list (their cases), nor what another partner
    answered (the GGZ's hit, its name)."""
    at_politie, _ = only_at(running, POLITIE)
    at_ggz, _ = only_at(running, GGZ)
    nowhere = running.named["nowhere"]
    cases = {
        at_politie.digits: _case("EIGEN"),
        at_ggz.digits: _case("ANDER"),
        nowhere.digits: _case("NIEMAND"),
    }
    listing = tmp_path / "lijst.csv"
    listing.write_text("bsn,case\n" + "".join(f"{b},{c}\n" for b, c in cases.items()))
    running.typed.update(cases)
    asked = running.run(
        "query",
        "--config",
        str(running.net.node_configs[ZVH]),
        "--file",
        str(listing),
        "--purpose",
        "zvh-triage",
        "--user",
        "tester",
        "--json",
    )
    assert asked.code == 0, asked.output
    # The asker did get a hit at the GGZ too (in its field): there is something to leak.
    outcomes = [o["outcome"] for p in asked.json["persons"] for o in p["organisations"]]
    assert "involved-domain-only" in outcomes and "involved" in outcomes

    trail_written(_db(running, POLITIE))
    with sqlite3.connect(_db(running, POLITIE)) as conn:
        rows = conn.execute("select * from notices").fetchall()
    text = "\n".join(" ".join(str(v) for v in row) for row in rows)
    assert cases[at_politie.digits] in text  # the person politie knows: told
    for other in (cases[at_ggz.digits], cases[nowhere.digits]):
        assert other not in text
    assert "ggz" not in text.lower() and "involved" not in text.lower()
    for digits in cases:
        assert digits not in text  # never a BSN
    # And the GGZ's notice (it was found in its field) holds only its own person.
    trail_written(_db(running, GGZ))
    with sqlite3.connect(_db(running, GGZ)) as conn:
        ggz_rows = conn.execute("select * from notices").fetchall()
    ggz_text = "\n".join(" ".join(str(v) for v in row) for row in ggz_rows)
    assert cases[at_ggz.digits] in ggz_text
    assert cases[at_politie.digits] not in ggz_text and POLITIE not in ggz_text
