"""The restriction step of an access request, on the real stores with a clock the test moves
(docs/adr/0039): the ZVH's FG asks every partner; the police know the person, the municipality
does not. The police's FG decides on the same code path as its "Beslissen over delen" page; at
the term's end the police's node seals and signs its late answer, the ZVH collects and checks it
(the mailbox between them is the only part played by the test), and the letter is built from it.

* The police's FG restricts under article 41 UAVG: the letter does not show the police — not in
  the partners' list, not in the answers to our own look-ups — and the police read exactly as the
  municipality, which does not know the person. The refusal is a record in the police's trail.
* The police's FG agrees: the letter shows the police with their contact point, and our own
  look-up's "Politie: betrokken" is quoted.
* While the term runs the letter names both partners as not answered yet, until when (Amsterdam
  time), and is marked not ready to send; nothing is delivered before the term's end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from betrokken import rules
from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, ZVH
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.audit.keys import read_log_key
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.subject import PersonKeys, find_records
from betrokken.config.load import load_network, load_node
from betrokken.config.schema import Network, Organisation
from betrokken.crypto import question as q
from betrokken.crypto.note import NoteKey
from betrokken.crypto.oprf import derive_organisation_key, evaluate
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.identity.keyfiles import read_envelope_key, read_seed
from betrokken.identity.pins import NetworkPins
from betrokken.node import deferrals, outbox
from betrokken.node.server import open_store
from betrokken.node.store import NodeStore, Registration
from betrokken.portal import i18n
from betrokken.portal.dpo import step_answers
from betrokken.portal.letter import (
    Addressee,
    Letter,
    agreed_partners,
    build_letter,
    restriction_lines,
    waiting_partners,
)
from betrokken.portal.report import decision_label
from betrokken.requester import late
from betrokken.v1 import betrokken_pb2 as pb

ORGS = (ZVH, POLITIE, GEMEENTE, GGZ)
ACCESS = "inzageverzoek"
PERSON = "999993653"
ASKED = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)  # 10:00 in Amsterdam
CASE = "FG-2026-031"


class Mailbox:
    """The coordinator's mailbox, played by the test: it keeps what a node delivers and hands it
    to the asker unchanged (the coordinator's own checks are tests/e2e/test_defer.py's)."""

    def __init__(self) -> None:
        self.messages: list[pb.MailMessage] = []

    def deliver(
        self, answer_id: str, label: str, kind: str, sealed: bytes, signature: bytes
    ) -> None:
        self.messages.append(
            pb.MailMessage(
                id=len(self.messages) + 1,
                answer_id=answer_id,
                sender=label,
                label=label,
                kind=kind,
                sealed=sealed,
                signature=signature,
            )
        )


@dataclasses.dataclass
class World:
    net: DevNetwork
    network: Network
    stores: dict[str, NodeStore]
    signers: dict[str, NoteKey]
    pseudonyms: dict[str, Pseudonym]
    mailbox: Mailbox

    def org(self, org_id: str) -> Organisation:
        found = self.network.organisation(org_id)
        assert found is not None
        return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    net = init_network(tmp_path / "network", ORGS, name="restriction-test")
    network = load_network(net.network_file)
    seed = read_seed(net.directory / "keyservice" / "oprf.seed")
    stores, signers, pseudonyms = {}, {}, {}
    for org_id in (ZVH, POLITIE, GEMEENTE):
        loaded = load_node(net.node_configs[org_id])
        stores[org_id] = open_store(loaded)
        org = network.organisation(org_id)
        assert org is not None
        signers[org_id] = read_log_key(loaded.resolve(loaded.component.log_key), org.log_key)
        value = evaluate(derive_organisation_key(seed, org_id).secret, PERSON.encode())
        pseudonyms[org_id] = Pseudonym(value, org.pseudonym_key_id)
    yield World(net, network, stores, signers, pseudonyms, Mailbox())
    for store in stores.values():
        store.engine.dispose()


def _ask(world: World) -> str:
    """The ZVH's FG asks: the asker keeps one awaited answer per partner that answered pending
    (as the requester does), and each partner's node keeps its deferred question (as its
    servicer and trail writer do); the police hold a registration of the person."""
    answer_id = str(uuid.uuid4())
    purpose = world.network.purpose(ACCESS)
    assert purpose is not None
    deadline = rules.defer_deadline(ASKED, purpose)
    question = q.Question(
        network=world.network.name,
        answer_id=answer_id,
        requester=ZVH,
        on_behalf_of=ZVH,
        purpose=ACCESS,
        role="fg",
        kind=q.Kind.PERSON,
        at=ASKED,
        nonce=secrets.token_hex(16),
        persons=1,
        envelopes=("aa" * 32,),
        watch_days=0,
        tags=("11" * 32,),
    )
    note = q.sign_question(question, NoteKey.generate(q.question_key_name(world.network.name, ZVH)))
    keys = {POLITIE: secrets.token_bytes(32), GEMEENTE: secrets.token_bytes(32)}
    rows = late.awaited_rows(
        world.network, world.org(ZVH), note, keys, ACCESS, "fg.zvh", [CASE], set(keys)
    )
    asker = world.stores[ZVH]
    with asker.engine.begin() as conn:
        late.keeping(lambda _conn: None, rows)(conn)
    police = world.stores[POLITIE]
    police.upsert(
        [
            Registration(
                world.pseudonyms[POLITIE], "veiligheid", "Politie, wijkteam Noord, 0900-8844",
                dt.date(2026, 3, 1), reference="PL-77",
            )
        ],
        "import.robot",
        retention_days=730,
        now=ASKED - dt.timedelta(days=1),
    )  # fmt: skip
    for org_id, store in ((POLITIE, police), (GEMEENTE, world.stores[GEMEENTE])):
        hits: tuple[outbox.Disclosed, ...] = ()
        if org_id == POLITIE:
            ps = world.pseudonyms[POLITIE]
            hits = (outbox.Disclosed(0, ps.value.hex(), ps.key_id, CASE, "fg.zvh", "", "defer",
                                     "PL-77"),)  # fmt: skip
        entry = outbox.Answered(
            answer_id=answer_id,
            at=q.format_time(ASKED),
            requester=ZVH,
            on_behalf_of=ZVH,
            role="fg",
            purpose=ACCESS,
            kind="person",
            access_point="ipv4:127.0.0.1:1",
            hits=hits,
            reply_key=keys[org_id].hex(),
            label=org_id,
            deadline=q.format_time(deadline),
            persons=1,
        )
        store.answered(answer_id, ASKED, outbox.encode(entry, 1))
        store.drain_outbox(
            lambda e, o=org_id: outbox.records(e, o, lambda p: "basis"), also=deferrals.keep
        )
    return answer_id


def _deliver(world: World, now: dt.datetime) -> int:
    return sum(
        deferrals.deliver_due(
            world.stores[o], world.network, world.org(o), world.signers[o], world.mailbox, now
        )
        for o in (POLITIE, GEMEENTE)
    )


def _collect(world: World) -> late.Collected:
    loaded = load_node(world.net.node_configs[ZVH])
    key = read_envelope_key(
        loaded.resolve(loaded.component.envelope_key), world.org(ZVH).envelope_key
    )
    collector = late.MailboxCollector(
        world.network, world.org(ZVH), loaded.tls, world.stores[ZVH].trail, key,
        NetworkPins(world.network),
    )  # fmt: skip
    waiting = list(world.mailbox.messages)

    def call(acknowledge: Any) -> list[pb.MailMessage]:
        handed, waiting[:] = list(waiting), []
        return handed

    collector._call = call  # type: ignore[method-assign]
    try:
        return collector.collect()
    finally:
        collector.close()


def _letter(world: World, answer_id: str, now: dt.datetime) -> Letter:
    """The letter as the FG's page builds it (:func:`betrokken.portal.dpo.build_from`), with our
    own earlier look-up in which the police answered "involved"."""
    i18n.set_language("nl")
    own = world.org(ZVH)
    portal: Any = SimpleNamespace(network=world.network, trail=world.stores[ZVH].trail,
                                  organisation=own)  # fmt: skip
    answers = step_answers(portal, answer_id)
    mine = world.pseudonyms[ZVH]
    subject = Subject(mine.value.hex(), mine.key_id, mine.fingerprint, "ZAAK-7")
    records = [
        (
            1,
            AuditEntry(
                event=Event.OWN_QUERY,
                at=ASKED - dt.timedelta(days=40),
                answer_id="earlier",
                organisation=ZVH,
                user="j.jansen",
                role="regisseur",
                purpose="zvh-triage",
                subjects=(subject,),
                outcomes={subject.fingerprint: {POLITIE: "involved", GEMEENTE: "not-involved"}},
                completeness="complete",
            ),
        )
    ]
    keys = PersonKeys({ZVH: mine.value}, frozenset({mine.fingerprint}))
    assert find_records  # the page reads the records through it; here they are given
    partners = [o.id for o in world.network.nodes() if o.id != ZVH]
    return build_letter(
        records, keys, world.network, own,
        Addressee("Mw. A. de Vries", "Kerkstraat 1", ASKED.date(), CASE),
        "*****3653", ASKED.date(), "nl",
        partners=restriction_lines(partners, answers, world.network, now, "nl"),
        agreed=agreed_partners(answers), waiting=waiting_partners(answers),
        partners_until=max((a.until for a in answers.values() if a.until), default=None),
    )  # fmt: skip


def _partners(letter: Letter) -> dict[str, tuple[str, str]]:
    assert letter.partners is not None
    return {line.name: (line.what, line.contact) for line in letter.partners}


def _decide(world: World, decision: str, ground: str) -> None:
    """The police's FG decides, as its page at /dpo/beslissen does (role dpo)."""
    police = world.stores[POLITIE]
    purposes = frozenset(
        p.id for p in world.network.purposes
        if "dpo" in rules.deciding_roles(world.network, POLITIE, p.id)
    )  # fmt: skip
    assert purposes == {ACCESS}
    [request] = deferrals.list_requests(police.engine, purposes)
    assert (request.requester, request.role, request.case) == (ZVH, "fg", CASE)
    deferrals.decide(
        police.engine, police.trail, world.network, POLITIE, request.id, "fg.politie",
        frozenset({"dpo"}), decision, ground, ASKED + dt.timedelta(hours=5),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("decision", "ground"),
    [
        ("niet-delen", "voorkoming-en-opsporing-van-strafbare-feiten"),
        ("delen", "recht-op-inzage"),
    ],
)
def test_a_partners_fg_decides_whether_the_letter_shows_it(
    world: World, decision: str, ground: str
) -> None:
    answer_id = _ask(world)
    politie, gemeente = world.org(POLITIE).name, world.org(GEMEENTE).name
    purpose = world.network.purpose(ACCESS)
    assert purpose is not None
    deadline = rules.defer_deadline(ASKED, purpose)

    # While the term runs: nobody is shown, both wait, until when in Amsterdam time.
    during = ASKED + dt.timedelta(hours=1)
    letter = _letter(world, answer_id, during)
    waiting = (
        "heeft nog niet geantwoord; zijn functionaris gegevensbescherming beslist uiterlijk op "
        "10 december 2026 om 10:00"
    )
    assert _partners(letter)[politie] == (waiting, "")
    assert _partners(letter)[gemeente] == (waiting, "")
    assert letter.waiting and letter.partners_until == "10 december 2026 om 10:00"
    [lookup] = letter.lookups
    assert f"{politie}: nog niet vermeld: deze partner heeft uw verzoek nog niet beantwoord" in [
        str(a) for a in lookup.answers
    ]

    _decide(world, decision, ground)
    # The police's trail holds the decision, with its ground; its FG report counts it.
    records = [r.entry for r in world.stores[POLITIE].trail.records()]
    [decided] = [e for e in records if e.event is Event.DECISION and e.user == "fg.politie"]
    assert decided.reason == f"{decision}: {ground}" and decided.purpose == ACCESS
    i18n.set_language("nl")
    assert decision_label(decided.reason) in (
        "Niet delen: Voorkoming, onderzoek, opsporing of vervolging van strafbare feiten "
        "(artikel 41, eerste lid, onder d, UAVG)",
        "Delen: Het recht op inzage van de betrokkene (artikel 15 AVG)",
    )

    # Nothing leaves before the term's end (its moment would tell a hit from a miss).
    assert _deliver(world, deadline - dt.timedelta(seconds=1)) == 0
    assert _deliver(world, deadline) == 2
    done = _collect(world)
    assert (done.kept, done.refused) == (2, 0)

    after = deadline + dt.timedelta(minutes=5)
    letter = _letter(world, answer_id, after)
    shown = _partners(letter)
    assert not letter.waiting
    answers = [str(a) for a in letter.lookups[0].answers]
    nothing = (
        "heeft op uw verzoek geen informatie verstrekt. Een partner die u niet kent en een partner "
        "die zijn antwoord heeft beperkt (artikel 23 AVG, artikel 41 UAVG) zien er in deze brief "
        "hetzelfde uit; u kunt het hem rechtstreeks vragen"
    )
    assert shown[gemeente] == (nothing, "")  # does not know the person
    if decision == "niet-delen":
        # The police read exactly as a partner that does not know the person.
        assert shown[politie] == shown[gemeente]
        assert not any(politie in a and "betrokken" in a.split(": ", 1)[1] for a in answers)
        assert "0900-8844" not in repr(letter)
    else:
        assert shown[politie] == (
            "nu bij u betrokken; deze partner heeft ermee ingestemd dat u dit wordt verteld",
            "Politie, wijkteam Noord, 0900-8844",
        )
        assert f"{politie}: betrokken; naam en contactpunt zijn gedeeld" in answers
    # The municipality did not agree to anything: its earlier answer is not quoted either.
    assert f"{gemeente}: niet betrokken" not in answers
