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
MAX_TEXT = 3000  # the FG's own paragraph(s)
MAX_SIGNER = 200
SALUTATIONS = ("heer", "mevrouw", "")  # "": neither; the letter then uses the full name
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
    "case-refused": N_("refused the question because its case reference did not match"),
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

    name: str  # on the envelope, e.g. "de heer B. Jansen"
    address: str  # lines as typed
    requested_on: dt.date | None
    reference: str
    salutation: str = ""  # one of SALUTATIONS
    surname: str = ""  # in the salutation: "Geachte heer Jansen,"
    own_text: str = ""  # the FG's own paragraph(s), as typed
    signer: str = ""  # who signs for the controller, e.g. "J. de Boer, directeur"

    @property
    def address_lines(self) -> list[str]:
        return [line.strip() for line in self.address.splitlines() if line.strip()]

    @property
    def own_paragraphs(self) -> list[str]:
        return [p.strip() for p in self.own_text.split("\n\n") if p.strip()]

    def greeting(self) -> str:
        """The salutation line: "Geachte heer Jansen," — never "Geachte de heer B. Jansen,"."""
        if self.salutation == "heer" and self.surname:
            return _("Dear Mr %(surname)s,") % {"surname": self.surname}
        if self.salutation == "mevrouw" and self.surname:
            return _("Dear Ms %(surname)s,") % {"surname": self.surname}
        return _("Dear %(name)s,") % {"name": self.surname or self.name}


def read_addressee(form: Mapping[str, str]) -> tuple[Addressee, dict[str, str]]:
    """The addressee from the form's fields, and per field what is wrong (message ids)."""
    problems: dict[str, str] = {}
    name = " ".join(form.get("name", "").split())
    address = "\n".join(
        " ".join(line.split()) for line in form.get("address", "").splitlines() if line.strip()
    )
    reference = " ".join(form.get("reference", "").split())
    salutation = form.get("salutation", "").strip()
    surname = " ".join(form.get("surname", "").split())
    signer = " ".join(form.get("signer", "").split())
    own_text = "\n".join(line.rstrip() for line in form.get("own_text", "").splitlines()).strip()
    if salutation not in SALUTATIONS:
        problems["salutation"] = N_("Choose how the person is addressed from the list.")
    if salutation and not surname:
        problems["surname"] = N_(
            "Fill in the surname for the salutation (for example Jansen, or De Vries)."
        )
    elif len(surname) > MAX_NAME or not surname.isprintable():
        problems["surname"] = N_(
            "The surname is too long or holds characters that cannot be printed."
        )
    if len(own_text) > MAX_TEXT or not own_text.replace("\n", " ").isprintable():
        problems["own_text"] = N_(
            "Your own text is longer than 3000 characters or holds characters that cannot be "
            "printed."
        )
    if len(signer) > MAX_SIGNER or not signer.isprintable():
        problems["signer"] = N_(
            "The signer is too long or holds characters that cannot be printed."
        )
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
    addressee = Addressee(
        name, address, requested_on, reference, salutation, surname, own_text, signer
    )
    return addressee, problems


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
class PurposeGroup:
    """The look-ups of one purpose, under its description and legal basis."""

    purpose: str
    legal_basis: str
    lines: tuple[LookupLine, ...]


@dataclass(frozen=True)
class CurrentRegistration:
    """This organisation's registration about the person as its node holds it now (read from
    the node's own registrations under the organisation's pseudonym, not from the log)."""

    since: dt.date
    domain: str
    contact: str
    advice: str = ""  # the advice's label, if the registration carries one


@dataclass(frozen=True)
class PartnerLine:
    """What one partner's node answered the FG's own access-request question (its current
    registration, as far as its policy for that purpose lets it say)."""

    name: str
    what: str
    contact: str = ""
    limited: bool = False  # it did not confirm its involvement (or did not answer)
    waiting: bool = False  # its term runs: its FG has not answered yet


@dataclass(frozen=True)
class PurposeLine:
    """A purpose of the network, for the letter's list of purposes (article 15, first paragraph,
    under a, GDPR)."""

    description: str
    legal_basis: str


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
    current: tuple[CurrentRegistration, ...] = ()
    current_since: tuple[str, ...] = ()  # the current registrations' since-dates, worded
    purposes: tuple[PurposeLine, ...] = ()
    recipients: tuple[str, ...] = ()  # organisations our node told of its involvement
    partners: tuple[PartnerLine, ...] | None = None  # None: the partners were not asked
    partners_asked_on: str = ""
    partners_until: str = ""  # while partners have not answered: the last term's end, worded
    registration_days: int = 730
    audit_years: int = 5
    source: str = ""

    @property
    def waiting(self) -> bool:
        """Partners have not answered yet: the letter is not ready to send."""
        return any(p.waiting for p in self.partners or ())

    @property
    def groups(self) -> tuple[PurposeGroup, ...]:
        """The look-ups grouped by purpose, in the order each purpose first appears."""
        order: dict[tuple[str, str], list[LookupLine]] = {}
        for line in self.lookups:
            order.setdefault((line.purpose, line.legal_basis), []).append(line)
        return tuple(PurposeGroup(p, b, tuple(lines)) for (p, b), lines in order.items())


def local_time(moment: dt.datetime, locale: str) -> str:
    """A moment as a person reads it: Amsterdam time, the month in words."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    pattern = _("d MMMM y 'at' HH:mm")
    return format_datetime(moment, pattern, tzinfo=ZONE, locale=locale)


def local_date(day: dt.date, locale: str) -> str:
    return format_date(day, "d MMMM y", locale=locale)


# The restriction step (docs/adr/0039): what a partner answered the FG's question for this request.
# A partner that did not agree, one that restricted under article 41 UAVG and one that does not
# know the person all answer "no-disclosure": the letter says that they read the same.
STEP_ANSWERS = {
    "involved": N_("involved with you now; it agreed that this is told to you"),
    "no-disclosure": N_(
        "gave no information in answer to your request. A partner that does not know you and a "
        "partner that limited its answer (article 23 GDPR, article 41 UAVG) read the same in "
        "this letter; you can ask it directly"
    ),
    "pending": N_("has not answered yet; its data protection officer decides by %(until)s"),
    "late": N_("has not answered yet; its term ended on %(until)s"),
    "none": N_("did not answer our question; you can ask it directly"),
    "closed": N_("does not answer access requests through this system; you can ask it directly"),
}


@dataclass(frozen=True)
class StepAnswer:
    """One partner's answer to the FG's question for a request, as the FG's organisation holds
    it: a late answer (``involved`` or ``no-disclosure``), or awaited until ``until``."""

    outcome: str  # involved | no-disclosure | pending | closed (its policy is none)
    contact: str = ""
    until: dt.datetime | None = None


def restriction_lines(
    asked: Sequence[str],
    answers: Mapping[str, StepAnswer],
    network: Network,
    now: dt.datetime,
    locale: str,
) -> list[PartnerLine]:
    """Each partner asked (``asked``: organisation ids) as the letter names it: involved with its
    contact point where its FG agreed; one sentence that does not tell a restriction from a miss
    where it gave nothing; not yet answered, until when (Amsterdam time), while its term runs;
    no answer where nothing came. A partner is never shown as involved unless it agreed."""
    lines = []
    for org_id in asked:
        name = _organisation(network, org_id)
        found = answers.get(org_id)
        if found is None:
            lines.append(PartnerLine(name, _(STEP_ANSWERS["none"]), "", True))
        elif found.outcome == "closed":
            lines.append(PartnerLine(name, _(STEP_ANSWERS["closed"]), "", True))
        elif found.outcome == "involved":
            lines.append(PartnerLine(name, _(STEP_ANSWERS["involved"]), found.contact))
        elif found.outcome == "pending" and found.until is not None:
            key = "pending" if now < found.until else "late"
            until = local_time(found.until, locale)
            lines.append(PartnerLine(name, _(STEP_ANSWERS[key]) % {"until": until}, "", True, True))
        else:
            lines.append(PartnerLine(name, _(STEP_ANSWERS["no-disclosure"]), "", True))
    return sorted(lines, key=lambda line: line.name)


def agreed_partners(answers: Mapping[str, StepAnswer]) -> frozenset[str]:
    """The partners whose FG agreed that their involvement is told (a late ``involved``)."""
    return frozenset(org for org, a in answers.items() if a.outcome == "involved")


def waiting_partners(answers: Mapping[str, StepAnswer]) -> frozenset[str]:
    return frozenset(org for org, a in answers.items() if a.outcome == "pending")


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


# What a partner answered our own look-up, where that partner did not agree (in the restriction
# step of this request) that its involvement is told: true for a refusal, a miss and no answer.
NOT_CONFIRMED = N_(
    "not given in this letter: this partner did not confirm it for your request; you can ask it "
    "directly"
)
NOT_YET = N_("not given yet: this partner has not answered your request yet")


def _answers(
    item: Happening,
    network: Network,
    own: Organisation,
    agreed: frozenset[str] = frozenset(),
    waiting: frozenset[str] = frozenset(),
) -> tuple[Answer, ...]:
    if item.event is Event.OWN_QUERY:
        if not item.answers:
            return (Answer("", _("no answer was recorded (the question did not get through)")),)
        return tuple(
            Answer(
                _organisation(network, org),
                _(ANSWERS.get(value, value))
                if org in agreed
                else _(NOT_YET)
                if org in waiting
                else _(NOT_CONFIRMED),
            )
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
    *,
    current: Sequence[CurrentRegistration] = (),
    partners: Sequence[PartnerLine] | None = None,
    agreed: frozenset[str] = frozenset(),
    waiting: frozenset[str] = frozenset(),
    partners_asked: dt.date | None = None,
    partners_until: dt.datetime | None = None,
) -> Letter:
    """The letter from the person's records in this organisation's trail (or any log), and its
    current registration about the person (``current``, read from its node).

    What a partner answered our own look-ups is quoted only for the partners in ``agreed``: their
    FG agreed, in this request's restriction step, that their involvement is told (docs/adr/0039);
    for the others the letter says it is not given (``waiting``: not yet)."""
    lookups: list[LookupLine] = []
    refusals: list[LookupLine] = []
    registrations: list[RegistrationLine] = []
    staff: list[StaffLine] = []
    recipients: set[str] = set()
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
            answers=_answers(item, network, own, agreed, waiting)
            if item.event is not Event.REFUSAL
            else (Answer("", _("the question was refused; nothing was asked")),),
            together=item.persons,
        )
        (refusals if item.event is Event.REFUSAL else lookups).append(line)
        level = item.reason.removeprefix("disclosed:").strip()
        if item.event is Event.DISCLOSURE and level in ("organisation", "domain"):
            recipients.add(line.organisation)
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
        current=tuple(current),
        partners=tuple(partners) if partners is not None else None,
        partners_asked_on=local_date(partners_asked or today, locale)
        if partners is not None
        else "",
        partners_until=local_time(partners_until, locale) if partners_until else "",
        current_since=tuple(local_date(c.since, locale) for c in current),
        purposes=tuple(PurposeLine(p.description, p.legal_basis) for p in network.purposes),
        recipients=tuple(sorted(recipients)),
        registration_days=network.retention.registration_days,
        audit_years=network.retention.audit_years,
        source=network.access_requests.source,
    )
