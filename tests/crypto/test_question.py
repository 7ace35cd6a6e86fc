"""The question's wire forms: the signed statement, envelopes, replies, tags; key derivation."""

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
        "purpose": "zvh-triage",
        "role": "regisseur",
        "at": AT,
        "nonce": "0f" * 16,
        "persons": 2,
        "envelopes": {"politie": "aa" * 32, "ggz": "bb" * 32},
        "tags": ("11" * 32, "22" * 32),
    }
    values.update(changes)
    return q.Question(**values)  # type: ignore[arg-type]


def test_a_signed_question_round_trips_and_is_canonical() -> None:
    question = _question()
    note = q.sign_question(question, KEY)
    assert note.startswith("betrokken-question/v1\n{")
    assert q.open_question(note, KEY.verifier()) == question
    assert q.peek_question(note) == question
    body = note.split("\n")[1]
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"persons":2', '"persons":3'),
        ('"role":"regisseur"', '"role":"beheerder"'),
        ("zvh-triage", "zsm-context"),
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
        "betrokken-question/v2\n{}\n",
        "betrokken-question/v1\n{}\n\n",
        "betrokken-question/v1\nnot json\n",
        'betrokken-question/v1\n{"v":1}\n',
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
        {"envelopes": {"politie": "zz"}},
        {"role": "a\nb"},
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
        user=user,
        acted_for="",
        items=tuple(q.LookupItem(bytes([i]) * 64, "k1-abc", case) for i, case in enumerate(cases)),
    )
    data = content.to_bytes()
    assert len(data) == q.ENVELOPE_HEADER + q.ENVELOPE_ITEM * len(cases)
    assert q.EnvelopeContent.from_bytes(data) == content


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
        {"outcome": o, "organisation_id": "politie", "contact": "é" * 300} for o in outcomes
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
    data = q.canonical({"v": 1, "answer_id": ANSWER, "label": "x", "items": items})
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
