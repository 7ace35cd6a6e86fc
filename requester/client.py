"""The asking organisation's side of a question: the one code path of the CLI and the portal.

For a list of persons it (1) has the key service evaluate the blinded BSNs under the key of every
organisation it asks and its own, in one round trip, naming the purpose, role and aanmelder (the
key service evaluates only for what this organisation may ask), checking each VOPRF proof; (2)
seals to each node that looks something up an envelope with a reply key and, per person, a lookup
hash of the node's pseudonym and the case, the user and acted-for sealed under a key derived from
that pseudonym (only a node that knows the person can read them); (3) signs the question, naming
the aanmelder and the kind, with the organisation's question key; (4) sends it through the
coordinator; (5) checks the receipt — signature, inclusion, every field of the record, consistency
with what this organisation witnessed; (6) opens each sealed reply and combines the answers with
those the network file gives for the nodes that disclose nothing (P5); (7) keeps the question and
its answers in the organisation's own trail. The BSN exists only in memory here (P1).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import grpc

from betrokken import rules
from betrokken.answer import LOOKUP_OUTCOMES, Answer, Outcome
from betrokken.audit.keys import log_origin
from betrokken.audit.proofs import Accepted, check_cosigned, check_log_proof, witness_cosigners
from betrokken.audit.record import AuditEntry, Event
from betrokken.clock import utcnow
from betrokken.config.load import Loaded
from betrokken.crypto import envelope as env
from betrokken.crypto import question as q
from betrokken.crypto.bsn import Bsn
from betrokken.crypto.cosignature import Cosigner
from betrokken.crypto.note import NoteKey
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import (
    BadInput,
    BetrokkenError,
    ConfigError,
    MalformedMessage,
    QuestionRefused,
    VerificationError,
    WitnessStale,
)
from betrokken.identity.names import COORDINATOR_URI, Identity, Role
from betrokken.identity.pins import NetworkPins, Pins, reloading
from betrokken.identity.rpc import PeerChannel, check_own_certificate, error_from_rpc
from betrokken.keyservice.client import QUESTION, Pseudonymiser
from betrokken.requester.lighttrail import LightTrail, LightWitness, NotVouched
from betrokken.requester.trail import own_query_entry
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from betrokken.wire import log_proof_from_wire

if TYPE_CHECKING:  # `betrokken query` writes its trail without SQLAlchemy (docs/adr/0044)
    # and reads its configuration without pydantic (docs/adr/0045)
    from betrokken.audit.log import AuditLog
    from betrokken.audit.witness import WitnessStore
    from betrokken.config.schema import Network, NodeConfig, Organisation, TlsFiles

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
Keep = Callable[[Any], None]  # what is written with the question's record, on its connection
OrganisationResult = rules.OrganisationResult


@dataclass(frozen=True)
class Person:
    """One person to ask about, as the regisseur typed or listed them."""

    bsn: Bsn
    case: str


@dataclass(frozen=True)
class PersonResult:
    masked_bsn: str
    fingerprint: str  # of the person's pseudonym under this organisation's own key
    case: str
    answers: tuple[OrganisationResult, ...]
    complete: bool


@dataclass(frozen=True)
class VerifiedReceipt:
    """Proof, checked here, that the question was in the signed log before it was answered."""

    leaf_index: int
    tree_size: int
    root: bytes
    checkpoint: str


@dataclass(frozen=True)
class QueryResult:
    answer_id: str
    purpose: str
    legal_basis: str
    requester: str
    on_behalf_of: str
    kind: q.Kind
    user: str
    role: str
    answered_at: dt.datetime
    persons: list[PersonResult]
    complete: bool
    receipt: VerifiedReceipt
    asked: tuple[str, ...]  # the nodes that received an envelope
    trail_problem: str | None = None  # the answer stands; keeping it in the trail failed
    trail_index: int | None = None


@dataclass
class Prepared:
    """A signed question with its sealed envelopes, ready to send (and what opens the replies)."""

    answer_id: str
    own: list[Pseudonym]  # the persons' pseudonyms under the asking organisation's own key
    note: str  # the signed question
    envelopes: dict[str, bytes]
    reply_keys: dict[str, bytes] = field(repr=False)
    groups: dict[str, list[str]]


def prepare_question(
    network: Network,
    requester: Organisation,
    question_key: NoteKey,
    pseudonyms: Mapping[str, Sequence[Pseudonym]],
    cases: Sequence[str],
    *,
    purpose: str,
    user: str,
    role: str,
    acted_for: str = "",
    on_behalf_of: str | None = None,
    kind: q.Kind | None = None,
    watch_days: int = 0,
    at: dt.datetime | None = None,
    answer_id: str | None = None,
) -> Prepared:
    """Seal an envelope to every node that looks something up and sign the question.

    ``pseudonyms`` holds, per organisation, the persons' pseudonyms under its key: the asking
    organisation's own (for the tags) and every node's it asks. Each node gets, per person, only
    the lookup hash of its own pseudonym and the case, user and acted-for sealed under a key
    derived from that pseudonym. Pure apart from randomness.
    """
    asked = rules.nodes_to_ask(network, purpose, requester.id)
    answer_id = answer_id or str(uuid.uuid4())
    groups = rules.reply_groups(network, purpose, requester.id)
    reply_keys = {label: env.new_reply_key() for label in groups}
    envelopes: dict[str, bytes] = {}

    def watches(org: Organisation) -> bool:
        return watch_days > 0 and rules.may_watch(rules.level(network, org.id, purpose))

    for org in asked:
        label = rules.reply_label(network, org, purpose)
        content = q.EnvelopeContent(
            answer_id=answer_id,
            node=org.id,
            reply_key=reply_keys[label],
            items=tuple(
                q.LookupItem.seal(
                    p.value,
                    p.key_id,
                    answer_id,
                    org.id,
                    index,
                    q.NeedToKnow(
                        case=case,
                        user=user,
                        acted_for=acted_for,
                        watch=reply_keys[label].hex() if watches(org) else "",
                    ),
                )
                for index, (p, case) in enumerate(zip(pseudonyms[org.id], cases, strict=True))
            ),
        )
        envelopes[org.id] = env.seal(
            org.envelope_public_key,
            q.envelope_info(network.name, answer_id, org.id),
            content.to_bytes(),
        )
    own = list(pseudonyms[requester.id])
    question = q.Question(
        network=network.name,
        answer_id=answer_id,
        requester=requester.id,
        on_behalf_of=on_behalf_of or requester.id,
        purpose=purpose,
        role=role,
        kind=kind or q.kind_for(len(cases)),
        at=at or utcnow(),
        nonce=secrets.token_hex(16),
        persons=len(cases),
        envelopes=q.envelope_hashes(envelopes),
        watch_days=watch_days,
        tags=q.tags_for([p.value for p in own], answer_id),
    )
    note = q.sign_question(question, question_key)
    return Prepared(answer_id, own, note, envelopes, reply_keys, groups)


@dataclass
class _Tally:
    """What one user asked today: persons, and the distinct persons per case reference."""

    asked: int = 0
    per_case: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class _Today:
    """The day's tallies per user, counted from the trail up to record ``after``."""

    midnight: dt.datetime
    after: int = 0
    users: dict[str, _Tally] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _tally(today: _Today, entry: AuditEntry | None) -> None:
    """Count one of the day's own-question records (a refused question, which reached no one,
    is not counted)."""
    if entry is None or "message" in entry.details:
        return
    tally = today.users.setdefault(entry.user, _Tally())
    tally.asked += int(entry.details.get("persons", "0") or 0)
    for subject in entry.subjects:
        tally.per_case.setdefault(subject.case, set()).add(subject.pseudonym)


@dataclass(frozen=True)
class _Asking:
    """What one question is asked as: purpose, who, for whom, which kind."""

    purpose: str
    user: str
    role: str
    acted_for: str
    on_behalf_of: str
    kind: q.Kind
    watch_days: int
    retry_of: str = ""  # the answer whose incomplete persons this question asks again


class Requester:
    """Asks questions on behalf of one organisation, with its keys; users never hold them."""

    def __init__(
        self,
        network: Network,
        organisation: str,
        tls: TlsFiles,
        question_key: NoteKey,
        trail: AuditLog | LightTrail,
        witness: WitnessStore | LightWitness,
        timeout: float = 30.0,
        pins: Pins | None = None,
    ) -> None:
        org = network.organisation(organisation)
        if org is None:
            raise ConfigError(f"organisation '{organisation}' is not in network '{network.name}'")
        if question_key.verifier() != org.question_key:
            raise ConfigError(
                f"the question key of {organisation} does not match the question_key pinned in "
                "the network file",
                hint="restore the right key file or pin its verifier in the network file",
            )
        self.network = network
        self.org: Organisation = org
        self.tls = tls
        self.question_key = question_key
        self.trail = trail
        self.witness = witness
        self.timeout = timeout
        pins = pins or NetworkPins(network)
        self.pseudonymiser = Pseudonymiser(network, tls, organisation, timeout, pins=pins)
        # Only the coordinator's listed certificates pass the handshake (docs/adr/0024, 11).
        self._coordinator = PeerChannel(
            network.coordinator.address,
            tls,
            network.coordinator.tls_name,
            Identity(Role.COORDINATOR),
            pins,
        )

    @classmethod
    def from_config(
        cls, loaded: Loaded[NodeConfig], timeout: float = 30.0, *, light: bool = False
    ) -> Requester:
        """The requester of the organisation whose node.toml ``loaded`` is.

        With ``light`` (``betrokken query``: one question, then exit) the trail is written
        through the database driver when :class:`LightTrail` vouches for the database, else
        through SQLAlchemy as always (docs/adr/0044)."""
        from betrokken.audit.keys import read_log_key
        from betrokken.identity.keyfiles import read_note_key

        network = loaded.network
        org = network.organisation(loaded.component.organisation)
        assert org is not None  # load_node checked it
        check_own_certificate(loaded.tls, Identity(Role.ORGANISATION, org.id), None, network)
        if not loaded.component.question_key:
            raise ConfigError(
                f"{loaded.path}: this organisation has no 'question_key', so it cannot ask",
                hint='add question_key = "question.key" (written by `betrokken network init`) '
                "and pin its verifier as question_key in the network file",
            )
        key = read_note_key(
            loaded.resolve(loaded.component.question_key), org.question_key, "question key"
        )
        trail: AuditLog | LightTrail
        witness: WitnessStore | LightWitness
        try:
            if not light:
                raise NotVouched("asked for the full store")
            signer = read_log_key(loaded.resolve(loaded.component.log_key), org.log_key)
            trail = LightTrail.open(loaded, signer)
            witness = LightWitness(trail)
        except NotVouched:
            from betrokken.audit.trail import open_trail

            trail, witness = open_trail(loaded)
        return cls(network, org.id, loaded.tls, key, trail, witness, timeout, reloading(loaded))

    @cached_property
    def _cosigners(self) -> dict[str, Cosigner]:
        """The witnesses' cosigner keys from the network file, read once (not per receipt)."""
        return witness_cosigners(self.network)

    @cached_property
    def _quorum(self) -> int:
        return self.network.witness_quorum()

    def close(self) -> None:
        if isinstance(self.trail, LightTrail):
            self.trail.close()
        self.pseudonymiser.close()
        closing = self._coordinator.close()
        if closing is not None:
            closing.close()

    def __enter__(self) -> Requester:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- asking ----------------------------------------------------------------------------------
    def ask(
        self,
        persons: Sequence[Person],
        *,
        purpose: str,
        user: str,
        role: str,
        acted_for: str = "",
        on_behalf_of: str | None = None,
        gezin: bool = False,
        watch_days: int = 0,
        retry_of: str = "",
    ) -> QueryResult:
        """Ask about ``persons``; the question and its answers are kept in the organisation's trail.

        ``on_behalf_of`` is the aanmelder, the organisation the question is asked for (default:
        this organisation itself); ``gezin`` asks several persons together as one household or
        casus; ``watch_days`` leaves a signal at the nodes for that long (at most what the
        purpose allows); ``retry_of`` marks the question as asking again the persons whose answer
        ``retry_of`` was incomplete (recorded in the trail, so it is not read as a repeat).
        Raises the BetrokkenError that stopped it (refused by policy, a service unreachable, a
        verification that failed); a failure to keep the trail after the answer arrived does
        not hide the answer (see ``QueryResult.trail_problem``).
        """
        own: list[Pseudonym] = []
        ask = _Asking(
            purpose=purpose,
            user=user,
            role=role,
            acted_for=acted_for,
            on_behalf_of=on_behalf_of or self.org.id,
            kind=q.kind_for(len(persons), gezin),
            watch_days=watch_days,
            retry_of=retry_of[:64],
        )
        try:
            self._check_input(persons, ask)
            prepared = self._prepare(persons, ask)
            own = prepared.own
            result, keep = self._send(prepared, persons, ask)
        except BetrokkenError as exc:
            self._keep(self._entry(ask, persons, own, error=exc), quiet=True)
            raise
        # A defer partner answers later: its reply key is kept, sealed, for the late answer.
        pending = {
            answer.organisation_id
            for person in result.persons
            for answer in person.answers
            if answer.answer.outcome is Outcome.PENDING
        }
        if pending or ask.watch_days:
            from betrokken.requester import late

            self._full_store()  # the awaited rows are written through SQLAlchemy
            keep = late.keeping(
                keep,
                late.awaited_rows(
                    self.network,
                    self.org,
                    prepared.note,
                    prepared.reply_keys,
                    ask.purpose,
                    ask.user,
                    [p.case for p in persons],
                    pending,
                    ask.watch_days,
                ),
            )
        # The question and its receipt's checkpoint are kept together: one durable transaction.
        problem, index = self._keep(self._entry(ask, persons, own, result=result), also=keep)
        return dataclasses.replace(result, trail_problem=problem, trail_index=index)

    def _keep(
        self,
        entry: AuditEntry,
        quiet: bool = False,
        also: Keep | None = None,
    ) -> tuple[str | None, int | None]:
        try:
            try:
                index = self._append(entry, also)
            except NotVouched:  # the light store hands this write to the full one
                self._full_store()
                index = self._append(entry, also)
            self._counted(entry, index)
            return None, index
        except self._store_errors() as exc:
            cause = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
            if quiet:
                return cause, None
            return (
                f"the question was answered, but it could not be kept in this organisation's "
                f"own trail ({cause}); tell the organisation's administrator",
                None,
            )

    def _append(self, entry: AuditEntry, also: Keep | None) -> int:
        """The record, and what is kept with it (``also``), in one transaction."""
        trail = self.trail
        if isinstance(trail, LightTrail):
            with trail.begin() as conn:
                index = trail.append([entry], conn)[0]
                if also is not None:
                    also(conn)
            return index
        with trail.engine.begin() as conn:
            index = trail.append([entry], conn)[0]
            if also is not None:
                also(conn)
        return index

    def _store_errors(self) -> tuple[type[BaseException], ...]:
        """What a failed write of the trail raises (the driver's errors on the light store)."""
        if isinstance(self.trail, LightTrail):
            return self.trail.store_errors
        from sqlalchemy.exc import SQLAlchemyError

        return (SQLAlchemyError,)

    @property
    def audit_log(self) -> AuditLog:
        """The trail as :class:`AuditLog` (a light one hands over to the full store first)."""
        self._full_store()
        assert not isinstance(self.trail, LightTrail)
        return self.trail

    def _full_store(self) -> None:
        """From here on, the trail and witness state through SQLAlchemy (same database)."""
        if isinstance(self.trail, LightTrail):
            self.trail, self.witness = self.trail.full()

    def _entry(
        self,
        ask: _Asking,
        persons: Sequence[Person],
        own: Sequence[Pseudonym],
        *,
        result: QueryResult | None = None,
        error: BetrokkenError | None = None,
    ) -> AuditEntry:
        entry = own_query_entry(
            self.org.id,
            ask.user,
            ask.acted_for,
            ask.role,
            ask.purpose,
            persons,
            own,
            result=result,
            error=error,
        )
        details = {**entry.details, "on_behalf_of": ask.on_behalf_of, "kind": ask.kind.value}
        if ask.watch_days:
            details["watch_days"] = str(ask.watch_days)
        if ask.retry_of:
            details["retry_of"] = ask.retry_of
        return dataclasses.replace(entry, details=details)

    def _check_input(self, persons: Sequence[Person], ask: _Asking) -> None:
        try:
            q.check_text(ask.user, "the asking user")
            q.check_text(ask.role, "the role", required=False)
            q.check_text(ask.acted_for, "acted for", required=False)
            for number, person in enumerate(persons, start=1):
                q.check_text(person.case, f"person {number}'s case reference")
        except MalformedMessage as exc:
            raise BadInput(
                exc.message,
                hint="use printable text of at most 128 bytes; a case reference is required",
            ) from None
        limit = self.network.coordinator.max_batch
        if not 1 <= len(persons) <= limit:
            raise BadInput(
                f"a question holds 1 to {limit} persons, this one {len(persons)}",
                hint="split the list",
            )
        purpose = rules.check_may_ask(
            self.network, self.org.id, ask.purpose, ask.role, ask.on_behalf_of
        )
        rules.check_watch_days(purpose, ask.watch_days)
        cases = [p.case for p in persons]
        rules.check_case_references(self.network, self.org.id, ask.kind, cases)
        asked, per_case = self._asked_today(ask.user)
        rules.check_user_limits(self.network, ask.user, asked, per_case, cases)

    def _asked_today(self, user: str) -> tuple[int, dict[str, int]]:
        """Persons ``user`` asked about since midnight (Europe/Amsterdam), and the distinct
        persons per case reference, from this organisation's own trail (refused questions, which
        reached no one, are not counted).

        Each record is read once per process: the trail only grows, records are committed in
        the order of their indices, so what was counted stays counted and only records after the
        last one read are read again (for every user; the tally starts afresh at midnight)."""
        midnight = dt.datetime.now(AMSTERDAM).replace(hour=0, minute=0, second=0, microsecond=0)
        today = self.__dict__.get("_today")
        if today is None or today.midnight != midnight:
            today = self.__dict__["_today"] = _Today(midnight)
        with today.lock:
            for record in self.trail.records(
                start=today.after,
                since=midnight.astimezone(dt.UTC),
                organisation=self.org.id,
                event=Event.OWN_QUERY,
            ):
                today.after = max(today.after, record.index + 1)
                _tally(today, record.entry)
            tally = today.users.get(user, _Tally())
            return tally.asked, {case: len(people) for case, people in tally.per_case.items()}

    def _counted(self, entry: AuditEntry, index: int) -> None:
        """This process's own record, just committed at ``index``, counted without reading it
        back — only when it is the very next record the tally would read (every record before
        it was read, none by another process came between) and one the reading would count
        (this organisation's question, asked today); otherwise the next question reads it."""
        today: _Today | None = self.__dict__.get("_today")
        if today is None or entry.event != Event.OWN_QUERY or entry.organisation != self.org.id:
            return
        with today.lock:
            if index == today.after and entry.at >= today.midnight:
                today.after = index + 1
                _tally(today, entry)

    def _prepare(self, persons: Sequence[Person], ask: _Asking) -> Prepared:
        keys = rules.question_keys(self.network, ask.purpose, self.org.id)
        pseudonyms = self.pseudonymiser.pseudonymise_under(
            [p.bsn for p in persons],
            keys,
            QUESTION,
            purpose=ask.purpose,
            role=ask.role,
            on_behalf_of=ask.on_behalf_of,
        )
        return prepare_question(
            self.network,
            self.org,
            self.question_key,
            pseudonyms,
            [p.case for p in persons],
            purpose=ask.purpose,
            user=ask.user,
            role=ask.role,
            acted_for=ask.acted_for,
            on_behalf_of=ask.on_behalf_of,
            kind=ask.kind,
            watch_days=ask.watch_days,
        )

    def _send(
        self, prepared: Prepared, persons: Sequence[Person], ask: _Asking
    ) -> tuple[QueryResult, Keep]:
        purpose, user, role = ask.purpose, ask.user, ask.role
        witnessed = self.witness.last()
        request = pb.QueryRequest(
            question=prepared.note,
            envelopes=[pb.Envelope(node=n, sealed=s) for n, s in prepared.envelopes.items()],
            witnessed_size=witnessed.size if witnessed else 0,
        )
        stub, replaced = self._coordinator.stub(pb_grpc.CoordinatorStub)
        if replaced is not None:
            replaced.close()
        try:
            response = stub.Query(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(
                exc,
                "coordinator",
                self.network.coordinator.address,
                expected=COORDINATOR_URI,
                tls=self.tls,
                allowed=self._coordinator.allowed(),
            ) from None
        receipt, keep = self._verify_receipt(response, prepared, witnessed)
        replies = self._open(response, prepared, len(persons))
        combined = rules.combine(self.network, purpose, self.org.id, replies, len(persons))
        results = [
            PersonResult(
                masked_bsn=person.bsn.masked(),
                fingerprint=pseudonym.fingerprint,
                case=person.case,
                answers=answers.answers,
                complete=answers.complete,
            )
            for person, pseudonym, answers in zip(persons, prepared.own, combined, strict=True)
        ]
        purpose_rule = self.network.purpose(purpose)
        try:
            answered_at = q.parse_time(response.answered_at)
        except MalformedMessage:
            answered_at = utcnow()
        return QueryResult(
            answer_id=prepared.answer_id,
            purpose=purpose,
            legal_basis=purpose_rule.legal_basis if purpose_rule else "",
            requester=self.org.id,
            on_behalf_of=ask.on_behalf_of,
            kind=ask.kind,
            user=user,
            role=role,
            answered_at=answered_at,
            persons=results,
            complete=all(r.complete for r in results),
            receipt=receipt,
            asked=tuple(sorted(prepared.envelopes)),
        ), keep

    def _verify_receipt(
        self, response: pb.QueryResponse, prepared: Prepared, witnessed: Accepted | None
    ) -> tuple[VerifiedReceipt, Keep]:
        """Every field of the record, against this organisation's own witness state as it was
        when the question was sent (``witnessed``: the consistency proof is from there, however
        far the witness moved on meanwhile — other questions, the witness loop); with what keeps
        the receipt's checkpoint in the witness state (done with the trail record, one commit)."""
        if response.answer_id != prepared.answer_id:
            raise VerificationError("the coordinator answered another question")
        origin = log_origin(self.network.name, "coordinator")
        try:
            proven = check_log_proof(
                log_proof_from_wire(response.receipt),
                self.network.coordinator.log_key,
                origin,
                witnessed,
            )
            # Cosigned by enough witnesses besides this organisation (docs/adr/0024, 10).
            check_cosigned(
                response.receipt.checkpoint,
                proven.checkpoint.size,
                self._cosigners,
                self._quorum,
                self.org.id,
            )
        except (QuestionRefused, WitnessStale) as exc:
            if isinstance(exc, QuestionRefused):
                self.witness.alarm(f"receipt-{exc.kind}", exc.message)
            raise VerificationError(
                f"the coordinator's receipt does not prove the question was recorded in the log "
                f"this organisation witnessed: {exc.message}",
                hint=f"keep the answer id {prepared.answer_id} and tell the network's DPO",
            ) from None
        question = q.peek_question(prepared.note)
        problems = rules.record_problems(proven.entry, question, prepared.note, self.network)
        if problems:
            self.witness.alarm("receipt-record-mismatch", ", ".join(problems))
            raise VerificationError(
                "the coordinator's receipt records another question (differs in: "
                + ", ".join(problems)
                + ")",
                hint=f"keep the answer id {prepared.answer_id} and tell the network's DPO",
            )
        checkpoint, note, answer_id = (
            proven.checkpoint,
            response.receipt.checkpoint,
            prepared.answer_id,
        )
        first = proven.first_seen

        def keep(conn: Any) -> None:  # the connection of the store that writes the record
            if first and self.witness.last() is None:
                self.witness.accept(checkpoint, note, conn)
            else:  # the organisation's witness loop confirms it against the newest log
                self.witness.seen(checkpoint, note, answer_id, conn)

        receipt = VerifiedReceipt(
            proven.index,
            proven.checkpoint.size,
            proven.checkpoint.root,
            response.receipt.checkpoint,
        )
        return receipt, keep

    def _open(
        self, response: pb.QueryResponse, prepared: Prepared, persons: int
    ) -> list[rules.Reply]:
        """Open every reply; a missing, unopenable or malformed one is an ERROR, never a "no"."""
        by_label: dict[str, list[pb.NodeReply]] = {}
        for reply in response.replies:
            by_label.setdefault(reply.label, []).append(reply)
        unknown = set(by_label) - set(prepared.groups)
        if unknown:
            raise MalformedMessage(
                "the coordinator returned replies for nodes that were not asked: "
                + ", ".join(sorted(label[:64] for label in unknown))
            )
        opened: list[rules.Reply] = []
        for label, members in prepared.groups.items():
            got = by_label.get(label, [])
            for position in range(len(members)):
                if position >= len(got):
                    opened.append(
                        rules.Reply(label, None, Outcome.ERROR, "the coordinator returned no reply")
                    )
                    continue
                opened.append(self._open_one(got[position], prepared, label, persons))
            if len(got) > len(members):
                raise MalformedMessage(f"the coordinator returned too many replies for '{label}'")
        return opened

    def _open_one(
        self, reply: pb.NodeReply, prepared: Prepared, label: str, persons: int
    ) -> rules.Reply:
        if reply.status == pb.UNREACHABLE:
            return rules.Reply(label, None, Outcome.UNREACHABLE, reply.problem[:200])
        if reply.status != pb.ANSWERED:
            return rules.Reply(label, None, Outcome.ERROR, reply.problem[:200])
        try:
            plain = env.open_reply(
                prepared.reply_keys[label],
                q.reply_aad(self.network.name, prepared.answer_id, label),
                reply.reply,
            )
            content = q.ReplyContent.from_bytes(plain)
            if content.answer_id != prepared.answer_id or content.label != label:
                raise MalformedMessage("the reply is for another question")
            if len(content.items) != persons:
                raise MalformedMessage(f"the reply holds {len(content.items)} answers")
            answers = [Answer.from_fields(item, LOOKUP_OUTCOMES) for item in content.items]
            for answer in answers:
                rules.check_reply(answer, label, self.network)
        except (VerificationError, MalformedMessage) as exc:
            return rules.Reply(label, None, Outcome.ERROR, f"unusable reply: {exc.message}")
        return rules.Reply(label, answers)
