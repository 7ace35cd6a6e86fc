"""The registration API for the partners' case systems: one service behind two thin doors.

A case system (GCOS, a wijkteam or GGZ system, a police system) tells the node that a case was
opened (``register``), is still open (``confirm``), that the involvement ended (``end``) or that
a registration was wrong (``withdraw``), one change at a time or many in one call (``bulk``).
The HTTP/JSON gateway (node/feeds_http.py) and the gRPC service (node/feeds_grpc.py) both only
authenticate the system and call :meth:`FeedService.apply`; the lifecycle rules stay in
:mod:`betrokken.lifecycle` and the store (docs/adr/0035).

* **Closed by default**: only a system listed in the node's ``[[feeds]]`` may feed; it is known
  by its OAuth 2.0 client secret (only its SHA-256 is configured) or its TLS client certificate.
* **Idempotent**: every call carries an idempotency key. The key, a SHA-256 of the request and
  the answer are kept (never the request: it holds BSNs), so a retried call changes nothing and
  gets the same answer; the same key with another request is refused.
* **No BSN outside the request body**: not in a URL, a log line, an answer or the trail (which
  names the system as the actor).
* **Problems** (RFC 9457) in Dutch and English from the one message catalogue (ADR 0020).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib.util
import json
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from babel.messages.pofile import read_po
from pydantic import BaseModel, ConfigDict, Field

from betrokken.clock import utcnow
from betrokken.config.schema import FeedSystem, Network, Organisation
from betrokken.crypto.bsn import Bsn, parse_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import InvalidBsn
from betrokken.lifecycle import KEEPABLE
from betrokken.node.feeds import FeedEvent, record_feed_event
from betrokken.node.importer import Details, InvalidDetails, PseudonymSource, details
from betrokken.node.importer import _bsn_problem as bsn_problem
from betrokken.node.store import Change, NodeStore, Registration, Stored

log = logging.getLogger("betrokken.node.feeds")

PROBLEM_TYPE = "urn:betrokken:problem:"
PROBLEM_JSON = "application/problem+json"
KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"
_KEY = re.compile(KEY_PATTERN)
TOKEN_SECONDS = 3600


# --- the one message catalogue (ADR 0020) ---------------------------------------------------
def _(message: str) -> str:
    """Marks a message for the catalogue (tools/portal_catalogue.py extracts it); English."""
    return message


@cache
def _dutch() -> dict[str, str]:
    """The Dutch texts of the portal's catalogue, the one catalogue of the project. Read as data
    (the node does not import the portal's code): locale/nl/LC_MESSAGES/messages.po."""
    spec = importlib.util.find_spec("betrokken.portal")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "locale/nl/LC_MESSAGES/messages.po"
    with path.open("rb") as handle:
        parsed = read_po(handle, locale="nl")
    return {
        str(m.id): str(m.string)
        for m in parsed
        if m.id and isinstance(m.id, str) and not m.context and isinstance(m.string, str)
        if m.string and not m.fuzzy
    }


def dutch(message: str) -> str:
    return _dutch().get(message, message)


# --- what a case system sends ------------------------------------------------------------------
class Operation(StrEnum):
    REGISTER = "register"
    CONFIRM = "confirm"
    END = "end"
    WITHDRAW = "withdraw"


BsnField = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="The person's BSN (burgerservicenummer): 9 digits. Only ever in a request "
        "body; pseudonymised at once, never stored, logged or answered.",
        examples=["111222333"],
    ),
]
Text64 = Annotated[str, Field(max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterChange(_Strict):
    """A case was opened, or is still open with these facts (a registration is a confirmation:
    an open case stays active for the network's retention term after it)."""

    bsn: BsnField
    since: dt.date | None = Field(
        default=None, description="start of involvement (new: today; else kept)"
    )
    until: dt.date | None = Field(
        default=None, description="the case's end, when the case system has one (else kept)"
    )
    open: bool = Field(default=False, description="the case has no end (clears an earlier until)")
    contact: Annotated[str, Field(max_length=256)] | None = Field(
        default=None, description="contact point shown on a hit (new: the organisation's)"
    )
    reference: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="the case system's own case reference (no personal data)"
    )
    domain: Text64 | None = Field(default=None, description="domain (new: the organisation's)")
    domain_only: bool | None = Field(
        default=None, description="disclose only the domain for this person (false: the policy)"
    )
    advice: Text64 | None = Field(
        default=None, description="a coded advice of the network file's advice_codes"
    )
    reactivate: bool = Field(
        default=False,
        description="register again a person the organisation withdrew by hand (by default a "
        "withdrawal by hand is kept, as in an import)",
    )


class ConfirmChange(_Strict):
    """The case is still open: the registration's term starts anew. Nothing is registered for a
    person the node does not hold (answer ``not held``)."""

    bsn: BsnField


class EndChange(_Strict):
    """The involvement ended. Without ``until``, or with an ``until`` before today, the
    registration ends now; with a later ``until`` it ends after that day."""

    bsn: BsnField
    until: dt.date | None = Field(default=None, description="the last day of involvement")


class WithdrawChange(_Strict):
    """The registration was wrong: removed, and remembered as withdrawn so a later import or
    registration does not register the person again (unless it reactivates)."""

    bsn: BsnField


class BulkChange(_Strict):
    """One change of a bulk call: the operation and that operation's fields."""

    operation: Operation
    bsn: BsnField
    since: dt.date | None = None
    until: dt.date | None = None
    open: bool = False
    contact: Annotated[str, Field(max_length=256)] | None = None
    reference: Annotated[str, Field(max_length=128)] | None = None
    domain: Text64 | None = None
    domain_only: bool | None = None
    advice: Text64 | None = None
    reactivate: bool = False


class BulkRequest(_Strict):
    """Many changes in one call, applied in order; each gets its own result."""

    changes: list[BulkChange] = Field(min_length=1, max_length=10_000)


SINGLE: dict[Operation, type[_Strict]] = {
    Operation.REGISTER: RegisterChange,
    Operation.CONFIRM: ConfirmChange,
    Operation.END: EndChange,
    Operation.WITHDRAW: WithdrawChange,
}


# --- what the node answers ---------------------------------------------------------------------
class Outcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    CONFIRMED = "confirmed"
    KEPT_WITHDRAWN = "kept withdrawn"
    ENDED = "ended"
    WITHDRAWN = "withdrawn"
    NOT_HELD = "not held"
    REFUSED = "refused"


class FieldProblem(_Strict):
    location: str = Field(description="where in the request, e.g. changes.3.until")
    problem: str = Field(description="what is wrong there (English)")


class Problem(_Strict):
    """A problem (RFC 9457): Dutch in ``title`` and ``detail``, English beside them."""

    type: str = Field(description="a URN naming the kind of problem")
    title: str = Field(description="what kind of problem (Dutch)")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what was wrong and what to do (Dutch)")
    title_en: str
    detail_en: str
    reason: str | None = Field(default=None, description="the particular reason (Dutch)")
    reason_en: str | None = None
    errors: list[FieldProblem] | None = None


class ChangeResult(_Strict):
    """What became of one change (never the BSN: ``index`` says which change)."""

    index: int = Field(ge=0, description="the change's place in the request (0 for a single)")
    operation: Operation
    outcome: Outcome
    active_until: dt.date | None = Field(
        default=None, description="the registration's last active day, when it is held"
    )
    problem: Problem | None = Field(default=None, description="why a change was refused")


class BulkAnswer(_Strict):
    results: list[ChangeResult]
    counts: dict[str, int] = Field(description="how many changes had each outcome")


class TokenAnswer(_Strict):
    """An OAuth 2.0 access token (RFC 6749, section 5.1)."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int


# --- problems ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    name: str
    status: int
    title: str
    detail: str


KINDS = {
    k.name: k
    for k in (
        Kind(
            "invalid-request",
            422,
            _("The request is not valid"),
            _("The request body does not follow the API's schema; see errors for where."),
        ),
        Kind(
            "invalid-bsn",
            422,
            _("Invalid BSN"),
            _(
                "The BSN is not valid; nothing was changed for this change. Check it in the case "
                "system."
            ),
        ),
        Kind(
            "invalid-details",
            422,
            _("The registration's details cannot be used"),
            _("The registration's details cannot be used; nothing was changed for this change."),
        ),
        Kind(
            "idempotency-key-missing",
            400,
            _("Idempotency key missing or malformed"),
            _(
                "Every change needs an idempotency key of 8 to 128 letters, digits or . _ : - "
                "(the Idempotency-Key header); use a new one for each new request."
            ),
        ),
        Kind(
            "idempotency-key-reused",
            422,
            _("Idempotency key used for another request"),
            _(
                "This idempotency key was used before for a different request; nothing was "
                "changed. Use a new key for a new request, the same key only to retry the same "
                "request."
            ),
        ),
        Kind(
            "in-progress",
            409,
            _("The same request is being applied"),
            _(
                "A request with this idempotency key is being applied right now; retry in a "
                "moment to get its answer."
            ),
        ),
        Kind(
            "too-many-changes",
            422,
            _("Too many changes in one call"),
            _(
                "A bulk call carries more changes than the node allows; split it into smaller "
                "calls."
            ),
        ),
        Kind(
            "unauthenticated",
            401,
            _("Not authenticated"),
            _(
                "The call has no valid access token or client certificate; get a token at "
                "/oauth/token with the system's client credentials."
            ),
        ),
        Kind(
            "not-a-feed",
            403,
            _("This system may not feed registrations"),
            _(
                "The system is not listed among the node's feeds; the node's beheerder adds it "
                "to node.toml."
            ),
        ),
        Kind(
            "not-found",
            404,
            _("No such operation"),
            _("The API has no operation at this address; see /openapi.json."),
        ),
        Kind(
            "method-not-allowed",
            405,
            _("Method not allowed"),
            _("This address takes another method; see /openapi.json."),
        ),
        Kind(
            "unsupported-media-type",
            415,
            _("Unsupported media type"),
            _("Send the request body as application/json."),
        ),
        Kind(
            "unavailable",
            503,
            _("The node cannot apply changes now"),
            _("Nothing of this request was changed; retry later with the same idempotency key."),
        ),
    )
}
# The reasons a registration's details are refused (importer.details, lifecycle), for Dutch.
REASONS = (
    _("until is before since"),
    _("until is in the past: the registration would be ended at once"),
    _("the registration's end is in the past"),
    _("disclosure may only be 'domain' or empty"),
    _("advice is not a code of the network file"),
    _("give until or open, not both"),
    _("no BSN"),
    _("BSN holds characters other than digits"),
    _("BSN does not have 9 digits (or 8 when Excel dropped a leading zero)"),
    _("BSN is all zeros"),
    _("BSN fails the elfproef (11-check)"),
)


def problem(
    kind: str,
    *,
    reason: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
) -> Problem:
    k = KINDS[kind]
    return Problem(
        type=PROBLEM_TYPE + k.name,
        title=dutch(k.title),
        status=k.status,
        detail=dutch(k.detail),
        title_en=k.title,
        detail_en=k.detail,
        reason=dutch(reason) if reason else None,
        reason_en=reason,
        errors=list(errors) if errors is not None else None,
    )


class FeedProblem(Exception):
    """A call that is refused as a whole: its problem document."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.title_en)
        self.problem = problem


# --- authentication ----------------------------------------------------------------------------
def secret_sha256(secret: str) -> str:
    """What node.toml keeps of a system's client secret (``token_sha256``)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    """OAuth 2.0 client credentials (RFC 6749, section 4.4): a listed system trades its client
    secret for a short-lived random access token, held (hashed) in memory only. After a restart
    a system simply asks for a new one (an expired or unknown token is a 401)."""

    def __init__(self, systems: Sequence[FeedSystem], clock: Callable[[], float] = time.monotonic):
        self.systems = {s.name: s for s in systems}
        self.clock = clock
        self._issued: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str, client_secret: str) -> TokenAnswer | None:
        system = self.systems.get(client_id)
        if system is None or system.token_sha256 is None:
            return None
        if not hmac.compare_digest(secret_sha256(client_secret), system.token_sha256):
            return None
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._issued = {k: v for k, v in self._issued.items() if v[1] > now}
            self._issued[hashlib.sha256(token.encode()).hexdigest()] = (
                system.name,
                now + TOKEN_SECONDS,
            )
        return TokenAnswer(access_token=token, expires_in=TOKEN_SECONDS)

    def system(self, token: str) -> FeedSystem | None:
        """The system an access token was issued to, while it is valid."""
        found = self._issued.get(hashlib.sha256(token.encode()).hexdigest())
        if found is None or found[1] <= self.clock():
            return None
        return self.systems.get(found[0])

    def by_certificate(self, common_name: str) -> FeedSystem | None:
        for system in self.systems.values():
            if system.client_cert_cn and hmac.compare_digest(system.client_cert_cn, common_name):
                return system
        return None


# --- the service ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """A call's answer: its HTTP status and JSON document (the same on a retry)."""

    status: int
    body: dict[str, Any]


@dataclass
class _Item:
    index: int
    change: BulkChange
    bsn: Bsn | None = None
    info: Details | None = None
    result: ChangeResult | None = None


def _refused(index: int, operation: Operation, problem_: Problem) -> ChangeResult:
    return ChangeResult(index=index, operation=operation, outcome=Outcome.REFUSED, problem=problem_)


_OUTCOMES = {
    Change.ADDED: Outcome.ADDED,
    Change.UPDATED: Outcome.UPDATED,
    Change.UNCHANGED: Outcome.CONFIRMED,
    Change.KEPT_WITHDRAWN: Outcome.KEPT_WITHDRAWN,
}


def request_sha256(operation: str, document: dict[str, Any]) -> str:
    """A hash of what a call asks (its operation and its body, canonical JSON): a retry with the
    same request in other whitespace or key order is the same request."""
    canonical = json.dumps([operation, document], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class FeedService:
    """Applies a case system's changes to the node's registrations (both doors call this)."""

    network: Network
    org: Organisation
    store: NodeStore
    pseudonyms: PseudonymSource
    max_changes: int = 1000
    clock: Callable[[], dt.datetime] = utcnow
    owner: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def retention_days(self) -> int:
        return self.network.retention.registration_days

    def apply_single(
        self, system: FeedSystem, key: str | None, operation: Operation, change: BaseModel
    ) -> Answer:
        """One change; a refused change is a problem answer (422) of its own."""
        document = change.model_dump(mode="json")
        bulk = BulkChange.model_validate({"operation": operation.value, **document})
        return self._apply(system, key, operation.value, document, [bulk], single=True)

    def apply_bulk(self, system: FeedSystem, key: str | None, request: BulkRequest) -> Answer:
        if len(request.changes) > self.max_changes:
            raise FeedProblem(
                problem(
                    "too-many-changes",
                    reason=f"{len(request.changes)} changes; at most {self.max_changes}",
                )
            )
        document = request.model_dump(mode="json")
        return self._apply(system, key, "bulk", document, list(request.changes), single=False)

    def _apply(
        self,
        system: FeedSystem,
        key: str | None,
        operation: str,
        document: dict[str, Any],
        changes: list[BulkChange],
        *,
        single: bool,
    ) -> Answer:
        if key is None or not _KEY.match(key):
            raise FeedProblem(problem("idempotency-key-missing"))
        digest = request_sha256(operation, document)
        claim = self.store.claim_feed_request(system.name, key, digest, self.owner, self.clock())
        if claim.state == "done":
            assert claim.answer is not None and claim.status is not None
            return Answer(claim.status, json.loads(claim.answer))
        if claim.state == "mismatch":
            raise FeedProblem(problem("idempotency-key-reused"))
        if claim.state == "busy":
            raise FeedProblem(problem("in-progress"))
        try:
            results = self.changes(system, changes, batch=not single)
        except BaseException:
            self.store.release_feed_request(system.name, key, self.owner)
            raise
        if single:
            (result,) = results
            if result.problem is not None:
                answer = Answer(result.problem.status, result.problem.model_dump(mode="json"))
            else:
                answer = Answer(200, result.model_dump(mode="json"))
        else:
            counts: dict[str, int] = {}
            for result in results:
                counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
            answer = Answer(200, BulkAnswer(results=results, counts=counts).model_dump(mode="json"))
        self.store.finish_feed_request(
            system.name, key, self.owner, answer.status, json.dumps(answer.body).encode()
        )
        return answer

    # --- applying changes -------------------------------------------------------------------
    def changes(
        self, system: FeedSystem, changes: Sequence[BulkChange], *, batch: bool = True
    ) -> list[ChangeResult]:
        """Apply ``changes`` in order (runs of the same operation together) and say what became
        of each; count them in the feed's state."""
        now = self.clock()
        today = now.date()
        items = [self._parse(i, c, today) for i, c in enumerate(changes)]
        valid = [item for item in items if item.result is None]
        made = self.pseudonyms.pseudonymise([item.bsn for item in valid if item.bsn is not None])
        pseudonyms = {item.index: p for item, p in zip(valid, made, strict=True)}
        actor = f"feed:{system.name}"
        start = 0
        while start < len(valid):
            end = start
            while end < len(valid) and valid[end].change.operation is valid[start].change.operation:
                end += 1
            run = valid[start:end]
            self._run(run, [pseudonyms[item.index] for item in run], actor, now, batch)
            start = end
        results = [item.result for item in items if item.result is not None]
        assert len(results) == len(items)
        refused = [r for r in results if r.outcome is Outcome.REFUSED]
        counted = Counter(r.outcome for r in results)
        first = refused[0].problem if refused else None
        record_feed_event(
            self.store,
            system.name,
            FeedEvent.SUCCESS if len(refused) < len(results) else FeedEvent.REFUSED,
            at=now,
            source="registration API",
            added=counted[Outcome.ADDED],
            confirmed=counted[Outcome.CONFIRMED] + counted[Outcome.UPDATED],
            ended=counted[Outcome.ENDED] + counted[Outcome.WITHDRAWN],
            refused=len(refused),
            problem=(first.reason_en or first.title_en or "") if first else "",
        )
        return results

    def _parse(self, index: int, change: BulkChange, today: dt.date) -> _Item:
        item = _Item(index, change)
        op = change.operation
        try:
            item.bsn = parse_bsn(change.bsn)
        except InvalidBsn:
            item.result = _refused(
                index, op, problem("invalid-bsn", reason=bsn_problem(change.bsn))
            )
            return item
        extra = (
            {
                name
                for name in ("since", "contact", "reference", "domain", "domain_only", "advice")
                if getattr(change, name) is not None
            }
            | ({"open"} if change.open else set())
            | ({"reactivate"} if change.reactivate else set())
        )
        allowed = {
            Operation.REGISTER: extra,
            Operation.CONFIRM: set(),
            Operation.END: set(),
            Operation.WITHDRAW: set(),
        }[op]
        if op in (Operation.CONFIRM, Operation.WITHDRAW) and change.until is not None:
            extra = extra | {"until"}
        wrong = sorted(extra - allowed)
        if wrong:
            item.result = _refused(
                index,
                op,
                problem(
                    "invalid-request",
                    errors=[
                        FieldProblem(location=f"changes.{index}.{n}", problem=f"not used by {op}")
                        for n in wrong
                    ],
                ),
            )
            return item
        if op is not Operation.REGISTER:
            return item
        if change.until is not None and change.open:
            item.result = _refused(
                index, op, problem("invalid-details", reason="give until or open, not both")
            )
            return item
        given = {
            name
            for name, value in (
                ("since", change.since),
                ("until", change.until or change.open or None),
                ("contact", change.contact),
                ("reference", change.reference),
                ("domain", change.domain),
                ("disclosure", change.domain_only),
                ("advice", change.advice),
            )
            if value is not None
        }
        try:
            item.info = details(
                self.network,
                self.org,
                since=change.since,
                until=change.until,
                contact=change.contact,
                domain=change.domain,
                reference=change.reference,
                disclosure="domain" if change.domain_only else None,
                advice=change.advice,
                today=today,
                given=given,
            )
        except InvalidDetails as exc:
            item.result = _refused(index, op, problem("invalid-details", reason=exc.kind))
        return item

    def _registration(
        self, pseudonym: Pseudonym, info: Details | None, today: dt.date, keep: frozenset[str]
    ) -> Registration:
        info = info or Details()
        return Registration(
            pseudonym=pseudonym,
            domain=info.domain or self.org.domain,
            contact=info.contact or self.org.contact,
            since=info.since or today,
            until=info.until,
            reference=info.reference,
            disclosure=info.disclosure,
            advice=info.advice,
            keep=keep,
        )

    def _upsert(
        self,
        items: Sequence[_Item],
        registrations: Sequence[Registration],
        actor: str,
        now: dt.datetime,
        batch: bool,
        reactivate: bool,
    ) -> None:
        if not items:
            return
        stored = self.store.upsert(
            registrations,
            actor=actor,
            retention_days=self.retention_days,
            now=now,
            reactivate=reactivate,
            lines=(items[0].index + 1, items[-1].index + 1) if batch else None,
        )
        for item, result in zip(items, stored, strict=True):
            item.result = self._stored(item, result)

    @staticmethod
    def _stored(item: _Item, stored: Stored) -> ChangeResult:
        op = item.change.operation
        if stored.change is Change.ALREADY_ENDED:
            return _refused(
                item.index,
                op,
                problem("invalid-details", reason="the registration's end is in the past"),
            )
        return ChangeResult(
            index=item.index,
            operation=op,
            outcome=_OUTCOMES[stored.change],
            active_until=stored.until,
        )

    def _run(
        self,
        run: Sequence[_Item],
        pseudonyms: Sequence[Pseudonym],
        actor: str,
        now: dt.datetime,
        batch: bool,
    ) -> None:
        op = run[0].change.operation
        today = now.date()
        if op is Operation.REGISTER:
            for reactivate in (False, True):
                chosen = [
                    (item, p)
                    for item, p in zip(run, pseudonyms, strict=True)
                    if item.change.reactivate is reactivate
                ]
                self._upsert(
                    [item for item, _p in chosen],
                    [
                        self._registration(p, item.info, today, KEEPABLE - item.info.given)
                        for item, p in chosen
                        if item.info is not None
                    ],
                    actor,
                    now,
                    batch,
                    reactivate,
                )
            return
        if op is Operation.WITHDRAW:
            for item, p in zip(run, pseudonyms, strict=True):
                removed = self.store.withdraw(
                    pseudonym=p, actor=actor, remember_days=self.retention_days, today=today
                )
                item.result = ChangeResult(
                    index=item.index,
                    operation=op,
                    outcome=Outcome.WITHDRAWN if removed else Outcome.NOT_HELD,
                )
            return
        held = self.store.find(pseudonyms, today)
        present = [(item, p) for item, p in zip(run, pseudonyms, strict=True) if p.value in held]
        for item, p in zip(run, pseudonyms, strict=True):
            if p.value not in held:
                item.result = ChangeResult(index=item.index, operation=op, outcome=Outcome.NOT_HELD)
        if op is Operation.CONFIRM:
            self._upsert(
                [item for item, _p in present],
                [self._registration(p, None, today, KEEPABLE) for _i, p in present],
                actor,
                now,
                batch,
                False,
            )
            return
        # end: later than today → the case system's end; otherwise ended now
        later = [
            (i, p) for i, p in present if i.change.until is not None and i.change.until >= today
        ]
        at_once = [(i, p) for i, p in present if i.change.until is None or i.change.until < today]
        self._upsert(
            [item for item, _p in later],
            [
                self._registration(p, Details(until=item.change.until), today, KEEPABLE - {"until"})
                for item, p in later
            ],
            actor,
            now,
            batch,
            False,
        )
        if at_once:
            self.store.end_registrations(
                [p for _i, p in at_once], actor, note="involvement ended (case system)"
            )
            for item, _p in at_once:
                item.result = ChangeResult(index=item.index, operation=op, outcome=Outcome.ENDED)
