"""The node's disclosure decision, as pure functions (no I/O).

The decision for an organisation and purpose is taken *before* any lookup, so that a refusal or
a deferral says nothing about whether the person is registered here (P7). Only the levels
``organisation`` and ``domain`` look anything up.
"""

from __future__ import annotations

from betrokken.answer import Answer, Outcome
from betrokken.config.schema import DisclosureLevel, Network, Organisation
from betrokken.node.store import Hit


def needs_lookup(level: DisclosureLevel) -> bool:
    return level in (DisclosureLevel.ORGANISATION, DisclosureLevel.DOMAIN)


def answer_without_lookup(level: DisclosureLevel, org: Organisation) -> Answer:
    """The one answer given for every pseudonym when the level does not look anything up.

    For ``defer`` it is the same for a hit and a miss, by construction: nothing was looked up.
    """
    if level is DisclosureLevel.DEFER:
        return Answer(
            Outcome.DEFERRED,
            organisation_id=org.id,
            organisation_name=org.name,
            domain=org.domain,
            contact=org.contact,
            message=org.defer_message,
        )
    return Answer(
        Outcome.DECLINED,
        organisation_id=org.id,
        organisation_name=org.name,
        message="this organisation does not disclose involvement for this purpose",
    )


def effective_level(policy: DisclosureLevel, hit: Hit) -> DisclosureLevel:
    """A registration may narrow what is disclosed (organisation -> domain), never widen it."""
    if hit.disclosure is DisclosureLevel.DOMAIN:
        return DisclosureLevel.DOMAIN
    return policy


def answer_for(
    level: DisclosureLevel, org: Organisation, hit: Hit | None, desk_contact: str
) -> Answer:
    """The answer for one pseudonym after a lookup (level is organisation or domain)."""
    if level is DisclosureLevel.DOMAIN:
        if hit is None:
            return Answer(Outcome.NOT_INVOLVED, domain=org.domain)
        return Answer(Outcome.INVOLVED_DOMAIN_ONLY, domain=org.domain, contact=desk_contact)
    if hit is None:
        return Answer(Outcome.NOT_INVOLVED, organisation_id=org.id, organisation_name=org.name)
    if effective_level(level, hit) is DisclosureLevel.DOMAIN:
        return Answer(Outcome.INVOLVED_DOMAIN_ONLY, domain=org.domain, contact=desk_contact)
    return Answer(
        Outcome.INVOLVED,
        organisation_id=org.id,
        organisation_name=org.name,
        domain=hit.domain,
        contact=hit.contact,
        since=hit.since.isoformat(),
    )


def may_ask(network: Network, requester: str, purpose_id: str, role: str) -> bool:
    purpose = network.purpose(purpose_id)
    if purpose is None or requester not in purpose.allowed_organisations:
        return False
    return not purpose.allowed_roles or role in purpose.allowed_roles
