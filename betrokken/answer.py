"""What an organisation answers about one person, and its wire form."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from betrokken.errors import MalformedMessage
from betrokken.v1 import betrokken_pb2 as pb


class Outcome(StrEnum):
    INVOLVED = "involved"
    INVOLVED_DOMAIN_ONLY = "involved-domain-only"
    NOT_INVOLVED = "not-involved"
    DECLINED = "declined"
    DEFERRED = "deferred"
    UNREACHABLE = "unreachable"
    ERROR = "error"

    @property
    def answered(self) -> bool:
        """Did the organisation give an answer (a hit, a miss, a refusal, a deferral)?"""
        return self not in (Outcome.UNREACHABLE, Outcome.ERROR)


_TO_WIRE = {
    Outcome.INVOLVED: pb.INVOLVED,
    Outcome.INVOLVED_DOMAIN_ONLY: pb.INVOLVED_DOMAIN_ONLY,
    Outcome.NOT_INVOLVED: pb.NOT_INVOLVED,
    Outcome.DECLINED: pb.DECLINED,
    Outcome.DEFERRED: pb.DEFERRED,
    Outcome.UNREACHABLE: pb.UNREACHABLE,
    Outcome.ERROR: pb.ERROR,
}
_FROM_WIRE = {wire: outcome for outcome, wire in _TO_WIRE.items()}
# What a node itself may answer; UNREACHABLE and ERROR are the coordinator's to say.
NODE_OUTCOMES = frozenset(
    {
        Outcome.INVOLVED,
        Outcome.INVOLVED_DOMAIN_ONLY,
        Outcome.NOT_INVOLVED,
        Outcome.DECLINED,
        Outcome.DEFERRED,
    }
)
MAX_TEXT = 512


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    organisation_id: str = ""
    organisation_name: str = ""
    domain: str = ""
    contact: str = ""
    since: str = ""
    message: str = ""

    def to_wire(self) -> pb.Disclosure:
        return pb.Disclosure(
            outcome=_TO_WIRE[self.outcome],
            organisation_id=self.organisation_id,
            organisation_name=self.organisation_name,
            domain=self.domain,
            contact=self.contact,
            since=self.since,
            message=self.message,
        )

    @classmethod
    def from_wire(
        cls, message: pb.Disclosure, *, allowed: frozenset[Outcome] | None = None
    ) -> Answer:
        outcome = _FROM_WIRE.get(message.outcome)
        if outcome is None or (allowed is not None and outcome not in allowed):
            raise MalformedMessage(f"unexpected outcome value {message.outcome}")
        fields = (
            message.organisation_id,
            message.organisation_name,
            message.domain,
            message.contact,
            message.since,
            message.message,
        )
        if any(len(text) > MAX_TEXT for text in fields):
            raise MalformedMessage(f"an answer field is longer than {MAX_TEXT} characters")
        return cls(outcome, *fields)

    def to_json(self) -> dict[str, str]:
        data = {"outcome": self.outcome.value}
        for key in (
            "organisation_id",
            "organisation_name",
            "domain",
            "contact",
            "since",
            "message",
        ):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data
