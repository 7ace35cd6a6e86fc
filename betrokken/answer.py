"""What an organisation answers about one person.

A node's answer travels sealed (see :mod:`betrokken.crypto.question`) as plain text fields;
:meth:`Answer.to_fields` and :meth:`Answer.from_fields` are that form. The outcome values are the
one place outcome names are spelled; every label a person reads is keyed by :class:`Outcome`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from betrokken.errors import MalformedMessage


class Outcome(StrEnum):
    INVOLVED = "involved"
    INVOLVED_DOMAIN_ONLY = "involved-domain-only"
    NOT_INVOLVED = "not-involved"
    DECLINED = "declined"
    DEFERRED = "deferred"
    # Answered by a node whose professionals decide per case: the same for a hit and a miss until
    # the decision or the deadline (docs/adr/0024). Answered, not involved, and never a "no".
    PENDING = "pending"
    # A deferred question's late answer when nothing is shared: the same for a person not known
    # there, a professional's refusal and a term that passed undecided (docs/adr/0037). Answered,
    # and never "not involved".
    NO_DISCLOSURE = "no-disclosure"
    # A node that knows the person refused the question because its case reference does not
    # match the asking organisation's pattern in the network file (docs/adr/0041). Answered, a
    # refusal, and never "not involved".
    CASE_REFUSED = "case-refused"
    UNREACHABLE = "unreachable"
    ERROR = "error"

    @property
    def answered(self) -> bool:
        """Did the organisation give an answer (a hit, a miss, a refusal, a deferral)?"""
        return self not in (Outcome.UNREACHABLE, Outcome.ERROR)

    @property
    def involved(self) -> bool:
        return self in (Outcome.INVOLVED, Outcome.INVOLVED_DOMAIN_ONLY)


# What a node itself may answer after a lookup; DECLINED and DEFERRED come from the network file,
# UNREACHABLE and ERROR are the requester's to conclude.
LOOKUP_OUTCOMES = frozenset(
    {
        Outcome.INVOLVED,
        Outcome.INVOLVED_DOMAIN_ONLY,
        Outcome.NOT_INVOLVED,
        Outcome.PENDING,
        Outcome.CASE_REFUSED,
    }
)
# What a deferred question's late answer may say, per person (docs/adr/0037).
LATE_OUTCOMES = frozenset({Outcome.INVOLVED, Outcome.NO_DISCLOSURE})
MAX_TEXT = 512
_FIELDS = (
    "organisation_id",
    "organisation_name",
    "domain",
    "contact",
    "since",
    "advice",
    "message",
)
# The sealed reply's field names (see crypto.question.REPLY_FIELD_BYTES).
_REPLY_NAMES = {"organisation_name": "name"}


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    organisation_id: str = ""
    organisation_name: str = ""
    domain: str = ""
    contact: str = ""
    since: str = ""
    advice: str = ""  # a code from the network file's advice_codes, set by the node that holds it
    message: str = ""
    by_policy: bool = False  # given from the network file: nothing reached the organisation

    def to_fields(self) -> dict[str, str]:
        """The sealed reply's form (only what a node discloses after a lookup)."""
        fields = {"outcome": self.outcome.value}
        for name in _FIELDS[:-1]:
            value = getattr(self, name)
            if value:
                fields[_REPLY_NAMES.get(name, name)] = value
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], allowed: frozenset[Outcome]) -> Answer:
        try:
            outcome = Outcome(fields.get("outcome", ""))
        except ValueError:
            raise MalformedMessage(
                f"unexpected outcome '{str(fields.get('outcome'))[:30]}'"
            ) from None
        if outcome not in allowed:
            raise MalformedMessage(f"the outcome '{outcome}' cannot come from here")
        values = {name: fields.get(_REPLY_NAMES.get(name, name), "") for name in _FIELDS[:-1]}
        if any(len(text) > MAX_TEXT for text in values.values()):
            raise MalformedMessage(f"an answer field is longer than {MAX_TEXT} characters")
        return cls(
            outcome,
            organisation_id=values["organisation_id"],
            organisation_name=values["organisation_name"],
            domain=values["domain"],
            contact=values["contact"],
            since=values["since"],
            advice=values["advice"],
        )

    def to_json(self) -> dict[str, str | bool]:
        data: dict[str, str | bool] = {"outcome": self.outcome.value}
        for key in _FIELDS:
            value = getattr(self, key)
            if value:
                data[key] = value
        if self.by_policy:
            data["by_policy"] = True
        return data
