"""The answer to a citizen's access request (inzageverzoek) as a letter, ready to print on A4.

Pure: the records :func:`betrokken.audit.subject.find_records` found, read into their parts by
:func:`betrokken.audit.subject.happenings` (the same reading ``betrokken audit subject`` uses),
are worded here for the person: each look-up in local time (Europe/Amsterdam) with the
organisation that asked, the asker's role and purpose, and what each organisation answered.
Staff account names and case numbers are *not* in the letter; the DPO sees them separately
(:attr:`Letter.staff`), on screen only. The words come from the portal's catalogue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from betrokken.audit.record import AuditEntry, Event
from betrokken.audit.subject import Happening, PersonKeys, happenings
from betrokken.config.schema import Network, Organisation
from betrokken.portal.i18n import gettext as _
from betrokken.portal.web import N_
from betrokken.tabular import CellError, parse_date

ZONE = ZoneInfo("Europe/Amsterdam")
MAX_NAME = 200
MAX_ADDRESS = 400
MAX_REFERENCE = 100
AP_ADDRESS = "Autoriteit Persoonsgegevens, Postbus 93374, 2509 AJ Den Haag"
AP_SITE = "https://www.autoriteitpersoonsgegevens.nl"


# What an organisation answered, in the words the person reads.
ANSWERS = {
    "involved": N_("involved; its name and contact point were given"),
    "involved-domain-only": N_("involved; only the kind of organisation was given, not its name"),
    "not-involved": N_("not involved"),
    "declined": N_("did not take part in this question; nothing was given"),
    "deferred": N_("a professional there decides whether anything is shared; nothing was given"),
    "pending": N_("a professional there was to decide whether anything is shared"),
    "unreachable": N_("did not answer (could not be reached)"),
    "error": N_("did not answer (technical error)"),
}
# What this organisation itself disclosed (a disclosure record of its own node).
DISCLOSED = {
    "organisation": N_("involved; our name and contact point were given"),
    "domain": N_("involved; only our kind of organisation was given, not our name"),
    "defer": N_("a professional of ours decides whether anything is shared; nothing was given"),
    "none": N_("we did not take part in this question; nothing was given"),
}
REGISTRATIONS = {
    "added": N_("registered: we noted that we are involved with you"),
    "updated": N_("registration changed (for example its end date or contact point)"),
    "unchanged": N_("registration confirmed by our case system"),
    "kept withdrawn": N_("registration not renewed: it had been withdrawn earlier"),
    "withdrawn": N_("registration ended (withdrawn)"),
    "expired": N_("registration ended (its term was over)"),
}
ROLES = {
    "regisseur": N_("process director (regisseur)"),
    "dpo": N_("data protection officer"),
    "beheerder": N_("administrator"),
}


@dataclass(frozen=True)
class Addressee:
    """Who the letter goes to, as the DPO typed it from the request."""

    name: str
    address: str  # lines as typed
    requested_on: dt.date | None
    reference: str

    @property
    def address_lines(self) -> list[str]:
        return [line.strip() for line in self.address.splitlines() if line.strip()]


def read_addressee(form: Mapping[str, str]) -> tuple[Addressee, dict[str, str]]:
    """The addressee from the form's fields, and per field what is wrong (message ids)."""
    problems: dict[str, str] = {}
    name = " ".join(form.get("name", "").split())
    address = "\n".join(
        " ".join(line.split()) for line in form.get("address", "").splitlines() if line.strip()
    )
    reference = " ".join(form.get("reference", "").split())
    if not name:
        problems["name"] = N_("Fill in the name of the person who asked.")
    elif len(name) > MAX_NAME or not name.isprintable():
        problems["name"] = N_("The name is too long or holds characters that cannot be printed.")
    if len(address) > MAX_ADDRESS or not address.replace("\n", " ").isprintable():
        problems["address"] = N_(
            "The address is too long or holds characters that cannot be printed."
        )
    if len(reference) > MAX_REFERENCE or not reference.isprintable():
        problems["reference"] = N_(
            "The reference is too long or holds characters that cannot be printed."
        )
    requested_on: dt.date | None = None
    raw = form.get("requested_on", "").strip()
    if raw:
        try:
            requested_on = parse_date(raw)
        except CellError:
            problems["requested_on"] = N_(
                "The date of the request is not a date (use the date field, e.g. 2026-11-23)."
            )
    return Addressee(name, address, requested_on, reference), problems


@dataclass(frozen=True)
class Answer:
    """What one organisation answered (``who`` empty: a remark about the question as a whole)."""

    who: str
    what: str

    def __str__(self) -> str:
        return f"{self.who}: {self.what}" if self.who else self.what


@dataclass(frozen=True)
class LookupLine:
    """One look-up as the person reads it: when, who asked (organisation and role), why, and
    what each organisation answered."""

    when: str
    organisation: str
    role: str
    purpose: str
    legal_basis: str
    answers: tuple[Answer, ...]
    together: int = 1  # asked together with this many persons (a list)


@dataclass(frozen=True)
class RegistrationLine:
    when: str
    what: str


@dataclass(frozen=True)
class TrailKeeper:
    """Where a partner's own trail is: which organisation keeps what, and how to reach it."""

    name: str
    contact: str
    own: bool


@dataclass(frozen=True)
class StaffLine:
    """For the DPO only (not in the letter): which account asked, for which case, which record."""

    when: str
    organisation: str
    user: str
    acted_for: str
    cases: str
    record: int


@dataclass(frozen=True)
class Letter:
    sender: str
    sender_contact: str
    network: str
    desk_contact: str
    addressee: Addressee
    dated: str
    requested_on: str
    masked_bsn: str
    lookups: tuple[LookupLine, ...]
    registrations: tuple[RegistrationLine, ...]
    refusals: tuple[LookupLine, ...]
    trails: tuple[TrailKeeper, ...]
    staff: tuple[StaffLine, ...] = field(default=())
    ap_address: str = AP_ADDRESS
    ap_site: str = AP_SITE


def local_time(moment: dt.datetime, locale: str) -> str:
    """A moment as a person reads it: Amsterdam time, the month in words."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    pattern = _("d MMMM y 'at' HH:mm")
    return format_datetime(moment, pattern, tzinfo=ZONE, locale=locale)


def local_date(day: dt.date, locale: str) -> str:
    return format_date(day, "d MMMM y", locale=locale)


def _organisation(network: Network, org_id: str) -> str:
    if org_id.startswith("domain:"):
        domain = org_id.split(":", 1)[1].split(" ")[0]
        return _("an organisation in the field of %(domain)s (name not given)") % {"domain": domain}
    org = network.organisation(org_id)
    return org.name if org else org_id


def _role(role: str) -> str:
    return _(ROLES[role]) if role in ROLES else role or "-"


def _purpose(network: Network, purpose_id: str) -> str:
    purpose = network.purpose(purpose_id) if purpose_id else None
    return purpose.description if purpose else purpose_id or "-"


def _answers(item: Happening, network: Network, own: Organisation) -> tuple[Answer, ...]:
    if item.event is Event.OWN_QUERY:
        if not item.answers:
            return (Answer("", _("no answer was recorded (the question did not get through)")),)
        return tuple(
            Answer(_organisation(network, org), _(ANSWERS.get(value, value)))
            for org, value in item.answers
        )
    if item.event is Event.DISCLOSURE:
        level = item.reason.removeprefix("disclosed:").strip()
        said = DISCLOSED.get(level)
        return (Answer(own.name, _(said) if said else item.reason),)
    if item.event is Event.SEARCH:
        if item.answered is None:
            return (Answer("", _("it is not recorded which organisations answered")),)
        answered = ", ".join(_organisation(network, o) for o in item.answered)
        lines = [
            Answer(
                "",
                _("answered: %(names)s; what each answered is kept by the organisation that asked")
                % {"names": answered or "-"},
            )
        ]
        if item.missing:
            names = ", ".join(_organisation(network, o) for o in item.missing)
            lines.append(Answer("", _("no answer from: %(names)s") % {"names": names}))
        return tuple(lines)
    return ()


def _asker(network: Network, organisation: str, on_behalf_of: str) -> str:
    """Who asked, and for whom when it asked for a partner (the aanmelder)."""
    if not organisation:
        return "-"
    who = _organisation(network, organisation)
    if on_behalf_of and on_behalf_of != organisation:
        who += ", " + _("on behalf of %(organisation)s") % {
            "organisation": _organisation(network, on_behalf_of)
        }
    return who


def build_letter(
    records: Sequence[tuple[int, AuditEntry]],
    keys: PersonKeys,
    network: Network,
    own: Organisation,
    addressee: Addressee,
    masked_bsn: str,
    today: dt.date,
    locale: str,
) -> Letter:
    """The letter from the person's records in this organisation's trail (or any log)."""
    lookups: list[LookupLine] = []
    refusals: list[LookupLine] = []
    registrations: list[RegistrationLine] = []
    staff: list[StaffLine] = []
    for item in happenings(records, keys):
        when = local_time(item.at, locale)
        if item.event is Event.REGISTRATION:
            label = REGISTRATIONS.get(item.reason)
            registrations.append(RegistrationLine(when, _(label) if label else item.reason))
            continue
        if item.event not in (Event.OWN_QUERY, Event.DISCLOSURE, Event.SEARCH, Event.REFUSAL):
            continue
        line = LookupLine(
            when=when,
            organisation=_asker(network, item.organisation, item.on_behalf_of),
            role=_role(item.role),
            purpose=_purpose(network, item.purpose),
            legal_basis=item.legal_basis or "-",
            answers=_answers(item, network, own)
            if item.event is not Event.REFUSAL
            else (Answer("", _("the question was refused; nothing was asked")),),
            together=item.persons,
        )
        (refusals if item.event is Event.REFUSAL else lookups).append(line)
        staff.append(
            StaffLine(
                when,
                line.organisation,
                item.user or "-",
                item.acted_for,
                ", ".join(item.cases) or "-",
                item.index,
            )
        )
    trails = tuple(
        TrailKeeper(o.name, o.contact, o.id == own.id)
        for o in sorted(network.organisations, key=lambda o: (o.id != own.id, o.name))
    )
    return Letter(
        sender=own.name,
        sender_contact=own.contact,
        network=network.name,
        desk_contact=network.desk_contact,
        addressee=addressee,
        dated=local_date(today, locale),
        requested_on=local_date(addressee.requested_on, locale) if addressee.requested_on else "",
        masked_bsn=masked_bsn,
        lookups=tuple(lookups),
        registrations=tuple(registrations),
        refusals=tuple(refusals),
        trails=trails,
        staff=tuple(staff),
    )
