"""The question's wire forms: the signed statement, envelopes, replies, tags, node tags, the
need-to-know sealing of what a node may read only on a hit; key derivation."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betrokken.crypto import question as q
from betrokken.crypto.note import NoteKey
from betrokken.crypto.oprf import derive_organisation_key, evaluate
from betrokken.crypto.pseudonym import key_id_for
from betrokken.errors import MalformedMessage, VerificationError

KEY = NoteKey.generate(q.question_key_name("net", "zvh"))
AT = dt.datetime(2026, 11, 23, 12, 30, 1, 123456, tzinfo=dt.UTC)
ANSWER = "7f1c2a4e-9b3d-4c5e-8f6a-0123456789ab"


def _question(**changes: object) -> q.Question:
    values: dict[str, object] = {
        "network": "net",
        "answer_id": ANSWER,
        "requester": "zvh",
        "on_behalf_of": "politie",
        "purpose": "zvh-triage",
        "role": "regisseur",
        "kind": q.Kind.LIST,
        "at": AT,
        "nonce": "0f" * 16,
        "persons": 2,
        "envelopes": ("aa" * 32, "bb" * 32),
        "watch_days": 0,
        "tags": ("11" * 32, "22" * 32),
    }
    values.update(changes)
    return q.Question(**values)  # type: ignore[arg-type]


def test_a_signed_question_round_trips_and_is_canonical() -> None:
    question = _question()
    note = q.sign_question(question, KEY)
    assert note.startswith("betrokken-question/v2\n{")
    assert q.open_question(note, KEY.verifier()) == question
    assert q.peek_question(note) == question
    body = note.split("\n")[1]
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))


def test_a_question_read_again_is_the_one_parsed_before_and_its_signature_is_still_checked() -> (
    None
):
    note = q.sign_question(_question(), KEY)
    first = q.peek_question(note)
    assert q.peek_question(note) is first  # parsed once: the coordinator's checks and metrics
    assert q.verify_question(note, first, KEY.verifier()) == _question()
    changed = note.replace('"role":"regisseur"', '"role":"beheerder"', 1)
    claimed = q.peek_question(changed)  # another note: parsed on its own
    assert claimed.role == "beheerder" and claimed is not first
    with pytest.raises(VerificationError):
        q.verify_question(changed, claimed, KEY.verifier())
    for _ in range(2):  # a malformed note is not remembered: refused each time
        with pytest.raises(MalformedMessage):
            q.peek_question("betrokken-question/v2\nnot json\n\nsignature")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"persons":2', '"persons":3'),
        ('"role":"regisseur"', '"role":"beheerder"'),
        ("zvh-triage", "zsm-context"),
        ('"on_behalf_of":"politie"', '"on_behalf_of":"zvh"'),
        ('"kind":"list"', '"kind":"gezin"'),
        ('"watch_days":0', '"watch_days":9'),
    ],
)
def test_a_changed_question_no_longer_verifies(old: str, new: str) -> None:
    note = q.sign_question(_question(), KEY)
    with pytest.raises(VerificationError):
        q.open_question(note.replace(old, new, 1), KEY.verifier())


def test_another_organisations_key_does_not_verify() -> None:
    other = NoteKey.generate(q.question_key_name("net", "zvh"))
    with pytest.raises(VerificationError):
        q.open_question(q.sign_question(_question(), other), KEY.verifier())


@pytest.mark.parametrize(
    "body",
    [
        "betrokken-question/v1\n{}\n",
        "betrokken-question/v2\n{}\n\n",
        "betrokken-question/v2\nnot json\n",
        'betrokken-question/v2\n{"v":1}\n',
        'betrokken-question/v2\n{"v":2}\n',
    ],
)
def test_malformed_questions_are_malformed(body: str) -> None:
    with pytest.raises(MalformedMessage):
        q.Question.from_body(body)


def test_a_non_canonical_body_is_refused() -> None:
    body = _question().body().decode()
    header, data, _ = body.split("\n")
    parsed = json.loads(data)
    reordered = json.dumps(dict(reversed(list(parsed.items()))), separators=(",", ":"))
    assert reordered != data  # the same fields, not in canonical order
    with pytest.raises(MalformedMessage):
        q.Question.from_body(f"{header}\n{reordered}\n")


@pytest.mark.parametrize(
    "changes",
    [
        {"answer_id": "not-a-uuid"},
        {"requester": "Not An Id"},
        {"nonce": "short"},
        {"persons": 0},
        {"tags": ("11" * 32,)},  # one tag for two persons
        {"envelopes": ("zz",)},
        {"envelopes": ("bb" * 32, "aa" * 32)},  # not sorted: the order would say something
        {"envelopes": ("aa" * 32, "aa" * 32)},
        {"role": "a\nb"},
        {"on_behalf_of": "Not An Id"},
        {"kind": q.Kind.PERSON},  # one person, but two are asked about
        {"persons": 1, "tags": ("11" * 32,)},  # a list of one
        {"watch_days": -1},
    ],
)
def test_a_question_checks_its_own_fields(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        _question(**changes)


def test_a_tag_differs_per_question_and_per_key() -> None:
    pseudonym = b"\x01" * 64
    assert q.tag(pseudonym, ANSWER) != q.tag(pseudonym, "00000000-0000-4000-8000-000000000000")
    assert q.tag(pseudonym, ANSWER) != q.tag(b"\x02" * 64, ANSWER)
    assert re.fullmatch(r"[0-9a-f]{64}", q.tag(pseudonym, ANSWER))


printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cn", "Co")),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() and t.isprintable())


@given(st.lists(printable, min_size=1, max_size=5), printable)
def test_an_envelope_round_trips_and_its_size_depends_only_on_the_number_of_persons(
    cases: list[str], user: str
) -> None:
    content = q.EnvelopeContent(
        answer_id=ANSWER,
        node="politie",
        reply_key=b"\x07" * 32,
        items=tuple(
            q.LookupItem.seal(
                bytes([i]) * 64, "k1-abcdef012345", ANSWER, "politie", i, q.NeedToKnow(case, user)
            )
            for i, case in enumerate(cases)
        ),
    )
    data = content.to_bytes()
    assert len(data) == q.ENVELOPE_HEADER + q.ENVELOPE_ITEM * len(cases)
    opened = q.EnvelopeContent.from_bytes(data)
    assert opened == content
    for i, (item, case) in enumerate(zip(opened.items, cases, strict=True)):
        assert item.lookup == q.lookup_key(bytes([i]) * 64)
        assert item.open(bytes([i]) * 64, ANSWER, "politie", i) == q.NeedToKnow(case, user)


def test_an_envelope_holds_no_pseudonym_user_or_case_in_the_clear() -> None:
    """What a node that does not know the person gets: a hash it cannot reverse and a sealed part
    it cannot open (need to know on a miss)."""
    pseudonym = bytes(range(64))
    secret = q.NeedToKnow(case="ZVH-2026-0142", user="r.jansen", acted_for="Politie NH")
    item = q.LookupItem.seal(pseudonym, "k1-abcdef012345", ANSWER, "politie", 0, secret)
    data = q.EnvelopeContent(ANSWER, "politie", b"\x07" * 32, (item,)).to_bytes()
    for value in (
        b"ZVH-2026-0142",
        b"r.jansen",
        b"Politie NH",
        pseudonym,
        pseudonym.hex().encode(),
    ):
        assert value not in data
    # Only the pseudonym it was looked up by opens it: another one, another question, another
    # node or another place in the list does not.
    with pytest.raises(VerificationError):
        item.open(bytes(64), ANSWER, "politie", 0)
    with pytest.raises(VerificationError):
        item.open(pseudonym, "00000000-0000-4000-8000-000000000000", "politie", 0)
    with pytest.raises(VerificationError):
        item.open(pseudonym, ANSWER, "ggz", 0)
    with pytest.raises(VerificationError):
        item.open(pseudonym, ANSWER, "politie", 1)
    assert item.open(pseudonym, ANSWER, "politie", 0) == secret


def test_the_same_person_twice_in_a_list_is_sealed_under_different_nonces() -> None:
    pseudonym = b"\x05" * 64
    first = q.LookupItem.seal(pseudonym, "k", ANSWER, "politie", 0, q.NeedToKnow("C-1", "u"))
    second = q.LookupItem.seal(pseudonym, "k", ANSWER, "politie", 1, q.NeedToKnow("C-2", "u"))
    assert first.lookup == second.lookup
    xor = bytes(a ^ b for a, b in zip(first.sealed, second.sealed, strict=True))
    plain = bytes(
        a ^ b
        for a, b in zip(
            q.NeedToKnow("C-1", "u").to_bytes(), q.NeedToKnow("C-2", "u").to_bytes(), strict=True
        )
    )
    assert xor[: len(plain)] != plain  # a shared nonce would make these equal


@pytest.mark.parametrize(
    "data",
    [
        b"\x09\x01x" + bytes(q.SEALED_PLAIN - 3),  # an unknown field
        b"\x01\xffx" + bytes(q.SEALED_PLAIN - 3),  # longer than the data
        b"\x01\x01x" + bytes(q.SEALED_PLAIN - 4) + b"\x01",  # something after the padding
        b"\x02\x01u" + bytes(q.SEALED_PLAIN - 3),  # no case
        bytes(10),
    ],
)
def test_a_malformed_sealed_part_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        q.NeedToKnow.from_bytes(data)


def test_node_tags_verify_only_under_the_nodes_key_and_for_their_question() -> None:
    key = NoteKey.generate("betrokken/net/politie")
    tags = [q.node_tag(q.lookup_key(b"\x01" * 64), ANSWER)]
    signature = q.sign_node_tags(key, "net", ANSWER, "politie", tags)
    q.verify_node_tags(key.verifier(), signature, "net", ANSWER, "politie", tags)
    other = NoteKey.generate("betrokken/net/politie")
    for args in (
        (other.verifier(), signature, "net", ANSWER, "politie", tags),
        (key.verifier(), signature, "net", ANSWER, "ggz", tags),
        (key.verifier(), signature, "other", ANSWER, "politie", tags),
        (key.verifier(), signature, "net", ANSWER, "politie", [q.node_tag(b"x" * 32, ANSWER)]),
        (key.verifier(), b"", "net", ANSWER, "politie", tags),
    ):
        with pytest.raises(VerificationError):
            q.verify_node_tags(*args)  # type: ignore[arg-type]
    recorded = q.node_tags_record({"politie": q.NodeTags(tuple(tags), signature)})
    assert q.read_node_tags(recorded) == {"politie": q.NodeTags(tuple(tags), signature)}
    with pytest.raises(MalformedMessage):
        q.read_node_tags('{"politie": 3}')


@given(
    st.lists(
        st.sampled_from(["involved", "not-involved", "involved-domain-only"]),
        min_size=1,
        max_size=5,
    )
)
def test_a_reply_round_trips_and_its_size_depends_only_on_the_number_of_persons(
    outcomes: list[str],
) -> None:
    items = tuple(
        {
            "outcome": o,
            "organisation_id": "politie",
            "contact": "é" * 300,
            "advice": "lopend-traject-niet-aanbellen",
        }
        for o in outcomes
    )
    data = q.ReplyContent(ANSWER, "politie", items).to_bytes()
    assert len(data) == q.REPLY_HEADER + q.REPLY_ITEM * len(outcomes)
    opened = q.ReplyContent.from_bytes(data)
    assert [i["outcome"] for i in opened.items] == outcomes
    # Over-long text is cut on a character boundary, never overflowing the padded size.
    assert all(len(i["contact"].encode()) <= 256 for i in opened.items)


@pytest.mark.parametrize(
    "items",
    [
        [{"outcome": "involved", "bsn": "x"}],  # a field a reply may not carry
        [{"outcome": 3}],
        [],
    ],
)
def test_a_malformed_reply_is_malformed(items: list[object]) -> None:
    data = q.canonical({"v": 2, "answer_id": ANSWER, "label": "x", "items": items})
    size = q.REPLY_HEADER + q.REPLY_ITEM * max(len(items), 1)
    with pytest.raises(MalformedMessage):
        q.ReplyContent.from_bytes(data + bytes(size - len(data)))


def test_the_per_organisation_key_derivation_matches_the_documented_vector() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "key-derivation.md").read_text()
    vector = json.loads(doc.split("```json\n", 1)[1].split("```", 1)[0])
    seed = bytes.fromhex(vector["seed"])
    for org, expected in vector["organisations"].items():
        pair = derive_organisation_key(seed, org)
        assert pair.secret.hex() == expected["secret"]
        assert pair.public.hex() == expected["public"]
        assert key_id_for(pair.public) == expected["key_id"]
        assert evaluate(pair.secret, vector["input"].encode()).hex() == expected["pseudonym"]
