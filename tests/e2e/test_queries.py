"""End-to-end: every answer checked against the ground truth."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.config.schema import DisclosureLevel
from betrokken.crypto.bsn import Bsn
from tests.e2e.conftest import Running


def expected(
    running: Running, asker: str, purpose: str, bsn: Bsn
) -> tuple[dict[str, str], Counter[tuple[str, str]]]:
    named: dict[str, str] = {}
    anonymous: Counter[tuple[str, str]] = Counter()
    where = running.truth.where(bsn)
    for org in running.network.nodes():
        if org.id == asker:
            continue
        level = running.network.disclosure_level(org.id, purpose)
        if level is DisclosureLevel.ORGANISATION:
            named[org.id] = "involved" if org.id in where else "not-involved"
        elif level is DisclosureLevel.DOMAIN:
            outcome = "involved-domain-only" if org.id in where else "not-involved"
            anonymous[(org.domain, outcome)] += 1
        elif level is DisclosureLevel.NONE:
            named[org.id] = "declined"
        else:
            named[org.id] = "deferred"
    return named, anonymous


def observed(person: dict[str, Any]) -> tuple[dict[str, str], Counter[tuple[str, str]]]:
    named = {}
    anonymous: Counter[tuple[str, str]] = Counter()
    for entry in person["organisations"]:
        if entry["organisation_id"]:
            named[entry["organisation_id"]] = entry["outcome"]
        else:
            anonymous[(entry["domain"], entry["outcome"])] += 1
    return named, anonymous


def sample(running: Running) -> list[Bsn]:
    people = list(running.named.values())
    for org in (POLITIE, RECLASSERING, GEMEENTE, GGZ, ZVH):
        people += running.truth.registrations[org][:3]
    return people


@pytest.mark.e2e
@pytest.mark.parametrize(("asker", "purpose"), [(ZVH, "zvh-triage"), (POLITIE, "zsm-context")])
def test_every_answer_matches_the_ground_truth(running: Running, asker: str, purpose: str) -> None:
    for bsn in sample(running):
        result = running.query(asker, bsn.digits, purpose)
        assert result.code == 0, result.stderr
        answer = result.json
        assert answer["complete"] is True
        assert answer["purpose"] == purpose
        person = answer["persons"][0]
        assert person["bsn"] == bsn.masked()
        assert observed(person) == expected(running, asker, purpose, bsn)
        # The requester is never asked about itself.
        assert asker not in observed(person)[0]


@pytest.mark.e2e
def test_a_hit_discloses_name_contact_and_since(running: Running) -> None:
    bsn = running.named["several"]
    answer = running.query(ZVH, bsn.digits, "zvh-triage").json
    politie = next(
        o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == POLITIE
    )
    assert politie["outcome"] == "involved"
    assert politie["organisation_name"]
    assert politie["contact"]
    assert politie["since"]
    # The GGZ answers with its domain alone, as one of two zorg members (k-anonymous): one of
    # them is involved, and nothing says which.
    zorg = [o for o in answer["persons"][0]["organisations"] if not o["organisation_id"]]
    assert zorg == [
        {
            "organisation_id": None,
            "outcome": "involved-domain-only",
            "domain": "zorg",
            "contact": running.network.desk_contact,
        },
        {"organisation_id": None, "outcome": "not-involved", "domain": "zorg"},
    ]


@pytest.mark.e2e
def test_defer_answers_the_same_for_hit_and_miss(running: Running, ggz_only: Bsn) -> None:
    hit = running.query(POLITIE, ggz_only.digits, "zsm-context").json
    miss = running.query(POLITIE, running.named["nowhere"].digits, "zsm-context").json

    def ggz_entry(answer: dict[str, Any]) -> dict[str, Any]:
        return next(o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == GGZ)

    assert ggz_entry(hit) == ggz_entry(miss)
    assert ggz_entry(hit)["outcome"] == "deferred"
    assert "professional" in ggz_entry(hit)["message"]


@pytest.mark.e2e
def test_declined_is_not_a_no(running: Running) -> None:
    bsn = running.named["one"]  # registered at the gemeente, which declines zsm-context
    answer = running.query(POLITIE, bsn.digits, "zsm-context").json
    gemeente = next(
        o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == GEMEENTE
    )
    assert gemeente["outcome"] == "declined"


@pytest.mark.e2e
def test_a_stopped_node_makes_the_answer_partial(running: Running) -> None:
    bsn = running.named["several"]
    running.cluster.stop_node(RECLASSERING)
    try:
        result = running.query(ZVH, bsn.digits, "zvh-triage")
        text = running.run(
            "query",
            "--config",
            str(running.net.node_configs[ZVH]),
            "--bsn",
            bsn.digits,
            "--purpose",
            "zvh-triage",
            "--case",
            "C-2",
            "--user",
            "tester",
        )
    finally:
        running.start_node(RECLASSERING)
    assert result.code == 3
    answer = result.json
    assert answer["complete"] is False
    entry = next(
        o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == RECLASSERING
    )
    assert entry["outcome"] == "unreachable"
    # The rest is still answered correctly.
    named, _ = observed(answer["persons"][0])
    assert named[POLITIE] == "involved"
    assert text.code == 3
    assert "ANSWER INCOMPLETE" in text.stdout
    assert "reclassering" in text.stdout.split("organisations answered")[1]


@pytest.mark.e2e
def test_a_purpose_the_organisation_may_not_ask_is_refused(running: Running) -> None:
    result = running.query(ZVH, running.named["one"].digits, "zsm-context")
    assert result.code == 4
    assert "may not ask for purpose 'zsm-context'" in result.stderr
    assert result.json["error"] == "PurposeNotAllowed" and result.json["exit_code"] == 4
    unknown = running.query(ZVH, running.named["one"].digits, "fishing-expedition")
    assert unknown.code == 4
    assert "not defined" in unknown.stderr
    assert "zvh-triage" in unknown.stderr  # the hint lists the known purposes


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("value", "reason"),
    [("123456789", "elfproef"), ("12345", "digits"), ("00000000", "all zeros"), ("12a456789", "")],
)
def test_an_invalid_bsn_is_bad_input(running: Running, value: str, reason: str) -> None:
    result = running.query(ZVH, value, "zvh-triage")
    assert result.code == 2
    assert reason in result.stderr
    assert value not in result.stderr + result.stdout


@pytest.mark.e2e
def test_a_case_reference_is_required(running: Running) -> None:
    result = running.run(
        "query",
        "--config",
        str(running.net.node_configs[ZVH]),
        "--bsn",
        running.named["one"].digits,
        "--purpose",
        "zvh-triage",
    )
    running.typed.add(running.named["one"].digits)
    assert result.code == 2
    assert "case reference is required" in result.stderr


@pytest.mark.e2e
def test_a_batch_query_answers_every_person(running: Running, tmp_path: Any) -> None:
    people = sample(running)[:8]
    listing = tmp_path / "list.csv"
    listing.write_text("bsn,case\n" + "".join(f"{b.digits},C-{i}\n" for i, b in enumerate(people)))
    result = running.run(
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
    listing.unlink()
    assert result.code == 0, result.stderr
    answer = result.json
    assert len(answer["persons"]) == len(people)
    for index, (bsn, person) in enumerate(zip(people, answer["persons"], strict=True)):
        assert person["case"] == f"C-{index}"
        assert observed(person) == expected(running, ZVH, "zvh-triage", bsn)


@pytest.mark.e2e
def test_a_batch_with_a_bad_line_asks_nothing(running: Running, tmp_path: Any) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(f"bsn,case\n{running.named['one'].digits},C-1\n123456789,C-2\n")
    result = running.run(
        "query",
        "--config",
        str(running.net.node_configs[ZVH]),
        "--file",
        str(listing),
        "--purpose",
        "zvh-triage",
    )
    listing.unlink()
    assert result.code == 2
    assert "line 3" in result.stderr
    assert "nothing was asked" in result.stderr


@pytest.mark.e2e
def test_one_case_reference_is_no_licence_to_fish(running: Running, tmp_path: Any) -> None:
    """The attacker's move from the review: a regisseur asks about many random persons under one
    case reference. A list under one case is refused unless it is a household of at most
    ``persons_per_case``; asked one by one, the ninth person under one case is refused, for
    that user only."""
    from betrokken.crypto.bsn import generate_bsn

    rng = random.Random(251)
    strangers = [generate_bsn(rng).digits for _ in range(100)]
    running.typed.update(strangers)
    listing = tmp_path / "list.csv"
    listing.write_text("bsn,case\n" + "".join(f"{b},ALGEMEEN\n" for b in strangers))
    zvh = str(running.net.node_configs[ZVH])
    base = ("query", "--config", zvh, "--file", str(listing), "--purpose", "zvh-triage")
    as_list = running.run(*base, "--user", "v.isser")
    assert as_list.code == 4, as_list.stderr
    assert "100 persons in this list share the case reference 'ALGEMEEN'" in as_list.stderr
    as_gezin = running.run(*base, "--user", "v.isser", "--gezin")
    assert as_gezin.code == 4 and "a household question may hold at most 8" in as_gezin.stderr
    listing.unlink()
    for number, bsn in enumerate(strangers[:9], start=1):
        one = running.run(
            "query", "--config", zvh, "--bsn", bsn, "--purpose", "zvh-triage",
            "--case", "ALGEMEEN", "--user", "v.isser", "--json",
        )  # fmt: skip
        if number <= 8:
            assert one.code == 0, one.stderr
        else:
            assert one.code == 4 and "under case reference 'ALGEMEEN'" in one.stderr
    other = running.query(ZVH, strangers[9], "zvh-triage", "ALGEMEEN")  # another user, "tester"
    assert other.code == 0, other.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("user", "role"), [("r.onbekend", "regisseur"), ("tester", "dpo"), ("tester", "<b>anyone</b>")]
)
def test_the_command_line_asks_only_as_a_service_account_the_network_file_names(
    running: Running, user: str, role: str
) -> None:
    bsn = running.named["several"].digits
    running.typed.add(bsn)
    refused = running.run(
        "query", "--config", str(running.net.node_configs[ZVH]), "--bsn", bsn,
        "--purpose", "zvh-triage", "--case", "C-SA", "--user", user, "--role", role,
    )  # fmt: skip
    assert refused.code == 4, refused.stderr
    assert "is not a service account of 'zvh-kennemerland'" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.e2e
def test_one_long_running_requester_counts_every_question_of_the_day_towards_a_case(
    running: Running,
) -> None:
    """The portal asks through one Requester for hours; it reads each trail record once and keeps
    the day's tallies. The attacker's move: ask person after person under one case reference
    through that one object (and one question from another process in between, which it must
    count too). The ninth person under the case is refused all the same."""
    from betrokken.config.load import load_node
    from betrokken.crypto.bsn import generate_bsn
    from betrokken.errors import PolicyRefusal
    from betrokken.requester.client import Person, Requester

    rng = random.Random(977)
    strangers = [generate_bsn(rng) for _ in range(9)]
    running.typed.update(b.digits for b in strangers)
    zvh = running.net.node_configs[ZVH]
    with Requester.from_config(load_node(zvh)) as requester:
        for number, bsn in enumerate(strangers, start=1):
            if number == 5:  # asked by another process (the command line), same user and case
                done = running.run(
                    "query", "--config", str(zvh), "--bsn", bsn.digits, "--purpose",
                    "zvh-triage", "--case", "VISSEN", "--user", "miss.onbekend",
                )  # fmt: skip
                assert done.code == 0, done.stderr
                continue
            ask = [Person(bsn, "VISSEN")]
            if number <= 8:
                requester.ask(ask, purpose="zvh-triage", user="miss.onbekend", role="regisseur")
            else:
                with pytest.raises(PolicyRefusal, match="under case reference 'VISSEN'"):
                    requester.ask(ask, purpose="zvh-triage", user="miss.onbekend", role="regisseur")
