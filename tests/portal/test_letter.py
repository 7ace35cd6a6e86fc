"""The access-request letter, built from a real signed trail: each look-up in Amsterdam time with
organisation, role, purpose and answers; no staff account names in the letter itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, ZVH
from betrokken.app.devnet import init_network
from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.subject import PersonKeys, find_records
from betrokken.config.load import load_network
from betrokken.config.schema import Network
from betrokken.crypto.note import NoteKey
from betrokken.crypto.oprf import derive_organisation_key, evaluate
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.db import make_engine
from betrokken.identity.keyfiles import read_seed
from betrokken.portal import i18n
from betrokken.portal.letter import (
    Addressee,
    Answer,
    CurrentRegistration,
    Letter,
    StepAnswer,
    agreed_partners,
    build_letter,
    read_addressee,
    restriction_lines,
    waiting_partners,
)

ORGS = (ZVH, POLITIE, GEMEENTE, GGZ)
PERSON, OTHER = "999993653", "999990019"
WINTER = dt.datetime(2026, 1, 15, 8, 5, tzinfo=dt.UTC)  # 09:05 in Amsterdam (CET)
SUMMER = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)  # 14:00 in Amsterdam (CEST)


@dataclasses.dataclass
class Trail:
    network: Network
    log: AuditLog
    keys: PersonKeys
    subject: Subject  # the person under the ZVH's key
    other: Subject


def _pseudonym(seed: bytes, network: Network, org: str, digits: str) -> Pseudonym:
    organisation = network.organisation(org)
    assert organisation is not None
    value = evaluate(derive_organisation_key(seed, org).secret, digits.encode())
    return Pseudonym(value, organisation.pseudonym_key_id)


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    base: Path = tmp_path_factory.mktemp("letter")
    net = init_network(base / "network", ORGS, name="letter-test")
    network = load_network(net.network_file)
    seed = read_seed(net.directory / "keyservice" / "oprf.seed")
    mine = {o: _pseudonym(seed, network, o, PERSON) for o in ORGS}
    theirs = _pseudonym(seed, network, ZVH, OTHER)
    subject = Subject(mine[ZVH].value.hex(), mine[ZVH].key_id, mine[ZVH].fingerprint, "ZAAK-7")
    other = Subject(theirs.value.hex(), theirs.key_id, theirs.fingerprint, "ZAAK-8")
    key = NoteKey.generate(f"betrokken/letter-test/{ZVH}")
    engine = make_engine(f"sqlite:///{base / 'node.db'}", LogBase.metadata)
    log = AuditLog(engine, key, key.name)
    triage = network.purpose("zvh-triage")
    assert triage is not None
    log.append(
        [
            AuditEntry(
                event=Event.REGISTRATION,
                at=WINTER - dt.timedelta(days=30),
                organisation=ZVH,
                user="import.robot",
                subjects=(dataclasses.replace(subject, case=""),),
                reason="added",
            ),
            AuditEntry(  # a list of two persons asked by the ZVH: one of them is ours
                event=Event.OWN_QUERY,
                at=WINTER,
                answer_id="a-1",
                organisation=ZVH,
                user="j.jansen",
                role="regisseur",
                purpose="zvh-triage",
                legal_basis=triage.legal_basis,
                subjects=(subject, other),
                outcomes={
                    subject.fingerprint: {
                        POLITIE: "involved",
                        "domain:zorg": "involved-domain-only",
                        GEMEENTE: "not-involved",
                    },
                    other.fingerprint: {POLITIE: "not-involved", GEMEENTE: "involved"},
                },
                completeness="complete",
                reason="answered",
                details={"persons": "2"},
            ),
            AuditEntry(  # the police asked; the ZVH's node disclosed its involvement
                event=Event.DISCLOSURE,
                at=SUMMER,
                answer_id="a-2",
                organisation=POLITIE,
                user="agent.0042",
                role="regisseur",
                purpose="zsm-context",
                legal_basis="Wet politiegegevens art. 20",
                subjects=(subject,),
                reason="disclosed: organisation",
            ),
            AuditEntry(  # about somebody else only: not in the letter
                event=Event.OWN_QUERY,
                at=SUMMER + dt.timedelta(hours=1),
                answer_id="a-3",
                organisation=ZVH,
                user="j.jansen",
                role="regisseur",
                purpose="zvh-triage",
                subjects=(other,),
                outcomes={other.fingerprint: {POLITIE: "involved"}},
                completeness="complete",
            ),
            AuditEntry(
                event=Event.LOG_ACCESS,
                at=SUMMER + dt.timedelta(hours=2),
                organisation=ZVH,
                user="fg.zvh",
                role="dpo",
            ),
        ]
    )
    keys = PersonKeys(
        {o: p.value for o, p in mine.items()}, frozenset(p.fingerprint for p in mine.values())
    )
    yield Trail(network, log, keys, subject, other)
    engine.dispose()


def _letter(
    trail: Trail,
    language: str,
    extra: dict[str, str] | None = None,
    current: tuple[CurrentRegistration, ...] = (),
    agreed: frozenset[str] = frozenset({POLITIE, GEMEENTE}),
    waiting: frozenset[str] = frozenset(),
) -> Letter:
    i18n.set_language(language)
    own = trail.network.organisation(ZVH)
    assert own is not None
    addressee, problems = read_addressee(
        {
            "name": "  Mw. A.  de Vries ",
            "address": "Kerkstraat 1\r\n\r\n2011 AA  Haarlem",
            "requested_on": "2-11-2026",
            "reference": "FG-2026-031",
        }
        | (extra or {})
    )
    assert problems == {}
    return build_letter(
        find_records(trail.log, trail.keys),
        trail.keys,
        trail.network,
        own,
        addressee,
        "*****3653",
        dt.date(2026, 11, 23),
        language,
        current=current,
        agreed=agreed,
        waiting=waiting,
    )


def _name(trail: Trail, org: str) -> str:
    organisation = trail.network.organisation(org)
    assert organisation is not None
    return organisation.name


def test_each_look_up_is_in_the_letter_in_amsterdam_time_with_organisation_role_purpose_answers(
    trail: Trail,
) -> None:
    letter = _letter(trail, "nl")
    triage = trail.network.purpose("zvh-triage")
    zsm = trail.network.purpose("zsm-context")
    assert triage is not None and zsm is not None
    rows = [
        (
            line.when,
            line.organisation,
            line.role,
            line.purpose,
            line.legal_basis,
            tuple(str(a) for a in line.answers),
        )
        for line in letter.lookups
    ]
    assert rows == [
        (
            "15 januari 2026 om 09:05",
            _name(trail, ZVH),
            "procesregisseur",
            triage.description,
            triage.legal_basis,
            (
                # a domain answer names no partner that could agree: never quoted
                "een organisatie uit het domein zorg (naam niet gedeeld): niet in deze brief: deze "
                "partner heeft dit voor uw verzoek niet bevestigd; u kunt het hem rechtstreeks "
                "vragen",
                f"{_name(trail, GEMEENTE)}: niet betrokken",
                f"{_name(trail, POLITIE)}: betrokken; naam en contactpunt zijn gedeeld",
            ),
        ),
        (
            "1 juli 2026 om 14:00",
            _name(trail, POLITIE),
            "procesregisseur",
            zsm.description,
            "Wet politiegegevens art. 20",
            (f"{_name(trail, ZVH)}: betrokken; onze naam en ons contactpunt zijn gedeeld",),
        ),
    ]
    assert [line.together for line in letter.lookups] == [2, 1]
    assert [(r.when, r.what) for r in letter.registrations] == [
        (
            "16 december 2025 om 09:05",
            "geregistreerd: wij hebben vastgelegd dat wij bij u betrokken zijn",
        )
    ]
    assert letter.refusals == ()


def test_the_letter_names_no_staff_account_which_the_dpo_sees_separately(trail: Trail) -> None:
    letter = _letter(trail, "nl")
    shown = repr(dataclasses.replace(letter, staff=()))
    for account in ("j.jansen", "agent.0042", "import.robot", "fg.zvh", "ZAAK-7", "ZAAK-8"):
        assert account not in shown
    assert [(s.user, s.cases, s.organisation) for s in letter.staff] == [
        ("j.jansen", "ZAAK-7", _name(trail, ZVH)),
        ("agent.0042", "ZAAK-7", _name(trail, POLITIE)),
    ]


def test_the_letter_lists_every_partners_own_trail_and_the_addressee_as_typed(
    trail: Trail,
) -> None:
    letter = _letter(trail, "nl")
    assert next((k.name, k.own) for k in letter.trails) == (_name(trail, ZVH), True)
    assert {k.name for k in letter.trails} == {_name(trail, o) for o in ORGS}
    assert letter.addressee == Addressee(
        "Mw. A. de Vries", "Kerkstraat 1\n2011 AA Haarlem", dt.date(2026, 11, 2), "FG-2026-031"
    )
    assert letter.addressee.address_lines == ["Kerkstraat 1", "2011 AA Haarlem"]
    assert (letter.dated, letter.requested_on) == ("23 november 2026", "2 november 2026")


def test_the_letter_in_english_uses_the_same_records(trail: Trail) -> None:
    letter = _letter(trail, "en")
    assert [line.when for line in letter.lookups] == [
        "15 January 2026 at 09:05",
        "1 July 2026 at 14:00",
    ]
    assert letter.lookups[1].answers == (
        Answer(_name(trail, ZVH), "involved; our name and contact point were given"),
    )


@pytest.mark.parametrize(
    ("salutation", "surname", "language", "greeting"),
    [
        ("heer", "Jansen", "nl", "Geachte heer Jansen,"),
        ("mevrouw", "De Vries", "nl", "Geachte mevrouw De Vries,"),
        ("", "", "nl", "Geachte Mw. A. de Vries,"),
        ("mevrouw", "De Vries", "en", "Dear Ms De Vries,"),
    ],
)
def test_the_salutation_and_the_name_on_the_envelope_are_separate_fields(
    trail: Trail, salutation: str, surname: str, language: str, greeting: str
) -> None:
    letter = _letter(trail, language, {"salutation": salutation, "surname": surname})
    assert letter.addressee.greeting() == greeting
    assert letter.addressee.name == "Mw. A. de Vries"  # the envelope keeps what was typed


def test_look_ups_are_grouped_by_purpose_under_its_legal_basis(trail: Trail) -> None:
    letter = _letter(trail, "nl")
    triage = trail.network.purpose("zvh-triage")
    zsm = trail.network.purpose("zsm-context")
    assert triage is not None and zsm is not None
    groups = [(g.purpose, g.legal_basis, len(g.lines)) for g in letter.groups]
    assert groups == [
        (triage.description, triage.legal_basis, 1),
        (zsm.description, "Wet politiegegevens art. 20", 1),
    ]
    assert sum(len(g.lines) for g in letter.groups) == len(letter.lookups)


def test_the_letter_holds_every_article_15_element_from_the_network_and_the_node(
    trail: Trail,
) -> None:
    today = CurrentRegistration(dt.date(2025, 12, 16), "veiligheid", "ZVH, 023-555 0000", "")
    letter = _letter(
        trail,
        "nl",
        {"own_text": "Eerste alinea.\n\nTweede alinea.", "signer": "J. de Boer, directeur"},
        current=(today,),
    )
    assert letter.current == (today,) and letter.current_since == ("16 december 2025",)
    assert [p.description for p in letter.purposes] == [
        p.description for p in trail.network.purposes
    ]
    # The police asked and our node said we are involved: the police received it.
    assert letter.recipients == (_name(trail, POLITIE),)
    assert (letter.registration_days, letter.audit_years) == (
        trail.network.retention.registration_days,
        trail.network.retention.audit_years,
    )
    assert letter.addressee.own_paragraphs == ["Eerste alinea.", "Tweede alinea."]
    assert letter.addressee.signer == "J. de Boer, directeur"


@pytest.mark.parametrize(
    ("form", "fields"),
    [
        ({"name": "", "address": "", "requested_on": "", "reference": ""}, {"name"}),
        ({"name": "A", "requested_on": "2-11-26"}, {"requested_on"}),
        ({"name": "A", "requested_on": "31-02-2026"}, {"requested_on"}),
        ({"name": "A\x00B", "reference": "x" * 101}, {"name", "reference"}),
        ({"name": "A", "address": "Straat 1\n" * 60}, {"address"}),
        ({"name": "A", "requested_on": "2026-11-02", "reference": "R-1"}, set()),
        ({"name": "A", "salutation": "dokter", "surname": "B"}, {"salutation"}),
        ({"name": "A", "salutation": "heer"}, {"surname"}),
        ({"name": "A", "own_text": "x" * 3001}, {"own_text"}),
        ({"name": "A", "own_text": "a\x07b", "signer": "s" * 201}, {"own_text", "signer"}),
        ({"name": "A", "salutation": "mevrouw", "surname": "De Vries"}, set()),
    ],
)
def test_the_addressee_form_names_each_field_that_is_wrong(
    form: dict[str, str], fields: set[str]
) -> None:
    _addressee, problems = read_addressee(form)
    assert set(problems) == fields


NOON = dt.datetime(2026, 12, 10, 11, 0, tzinfo=dt.UTC)  # 12:00 in Amsterdam (CET)
NOTHING = (
    "heeft op uw verzoek geen informatie verstrekt. Een partner die u niet kent en een partner "
    "die zijn antwoord heeft beperkt (artikel 23 AVG, artikel 41 UAVG) zien er in deze brief "
    "hetzelfde uit; u kunt het hem rechtstreeks vragen"
)


@pytest.mark.parametrize(
    ("answer", "now", "what", "contact", "limited", "waiting"),
    [
        # agreed: involved, with its contact point
        (StepAnswer("involved", "politie, 0900"), NOON,
         "nu bij u betrokken; deze partner heeft ermee ingestemd dat u dit wordt verteld",
         "politie, 0900", False, False),
        # restricted, unknown there, or undecided: one sentence for all three, no contact
        (StepAnswer("no-disclosure"), NOON, NOTHING, "", True, False),
        # the term runs: until when, in Amsterdam time
        (StepAnswer("pending", until=NOON), NOON - dt.timedelta(hours=1),
         "heeft nog niet geantwoord; zijn functionaris gegevensbescherming beslist uiterlijk op "
         "10 december 2026 om 12:00", "", True, True),
        # the term ended and nothing was collected yet: still no answer, never "not involved"
        (StepAnswer("pending", until=NOON), NOON,
         "heeft nog niet geantwoord; zijn termijn liep af op 10 december 2026 om 12:00", "", True,
         True),
        (StepAnswer("closed"), NOON,
         "beantwoordt geen inzageverzoeken via dit systeem; u kunt het hem rechtstreeks vragen",
         "", True, False),
        # no answer at all (it could not be reached when asked)
        (None, NOON, "heeft onze vraag niet beantwoord; u kunt het hem rechtstreeks vragen", "",
         True, False),
    ],
)  # fmt: skip
def test_each_partner_asked_reads_as_what_it_answered_and_never_involved_unless_it_agreed(
    trail: Trail,
    answer: StepAnswer | None,
    now: dt.datetime,
    what: str,
    contact: str,
    limited: bool,
    waiting: bool,
) -> None:
    i18n.set_language("nl")
    answers = {POLITIE: answer} if answer is not None else {}
    [line] = restriction_lines([POLITIE], answers, trail.network, now, "nl")
    assert (line.name, line.what, line.contact) == (_name(trail, POLITIE), what, contact)
    assert (line.limited, line.waiting) == (limited, waiting)
    assert (POLITIE in agreed_partners(answers)) is (what.startswith("nu bij u betrokken"))
    assert (POLITIE in waiting_partners(answers)) is waiting


def test_without_the_partners_asked_the_letter_says_so_instead_of_listing_nobody(
    trail: Trail,
) -> None:
    assert _letter(trail, "nl").partners is None


def test_a_partner_that_did_not_agree_is_not_quoted_from_our_look_ups(trail: Trail) -> None:
    """Our own look-up recorded "Politie: betrokken". The letter quotes it only when the police's
    FG agreed in this request's restriction step (artikel 23 AVG / artikel 41 UAVG); while it has
    not answered, the letter says "not yet"; when it gave nothing, it says so without telling a
    restriction from a miss."""
    quoted = f"{_name(trail, POLITIE)}: betrokken; naam en contactpunt zijn gedeeld"
    assert quoted in [str(a) for a in _letter(trail, "nl").lookups[0].answers]
    refused = [
        str(a) for a in _letter(trail, "nl", agreed=frozenset({GEMEENTE})).lookups[0].answers
    ]
    assert quoted not in refused
    assert (
        f"{_name(trail, POLITIE)}: niet in deze brief: deze partner heeft dit voor uw verzoek niet "
        "bevestigd; u kunt het hem rechtstreeks vragen"
    ) in refused
    assert f"{_name(trail, GEMEENTE)}: niet betrokken" in refused  # the others stay as they were
    waiting = (
        _letter(trail, "nl", agreed=frozenset({GEMEENTE}), waiting=frozenset({POLITIE}))
        .lookups[0]
        .answers
    )
    assert (
        f"{_name(trail, POLITIE)}: nog niet vermeld: deze partner heeft uw verzoek nog niet "
        "beantwoord"
    ) in [str(a) for a in waiting]
    # Not asked at all: nobody is quoted.
    nobody = [str(a) for a in _letter(trail, "nl", agreed=frozenset()).lookups[0].answers]
    assert all("betrokken" not in line.split(": ", 1)[1] for line in nobody)


def test_a_question_asked_for_a_partner_names_the_aanmelder_in_the_letter(trail: Trail) -> None:
    from betrokken.portal.letter import _asker

    i18n.set_language("nl")
    zvh, politie = _name(trail, ZVH), _name(trail, POLITIE)
    assert _asker(trail.network, ZVH, POLITIE) == f"{zvh}, namens {politie}"
    assert _asker(trail.network, ZVH, ZVH) == zvh  # on its own basis: no "namens"
    i18n.set_language("en")
    assert _asker(trail.network, ZVH, POLITIE) == f"{zvh}, on behalf of {politie}"
