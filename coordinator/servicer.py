"""The coordinator's gRPC servicer: a blind, accountable relay.

For every question it checks the requester's certificate and signature, the purpose rules (for
the aanmelder the question names), freshness and replay, and that the envelopes it is to route
are exactly those the question commits to, one for every node that looks something up; records
the question (fail closed); forwards each envelope with the record, its inclusion proof, the
signed checkpoint and a consistency proof to its node; checks each node's signed tags; records
which nodes were asked and answered, with their tags (the *answered* record); and returns the
sealed replies with completeness. It sees who asked, for whom, for which purpose, how many
persons, which nodes answered in time and the envelopes' hashes — never a pseudonym, a case, a
user or an answer (P4).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, cast

import grpc
from sqlalchemy.exc import SQLAlchemyError

from betrokken import rules
from betrokken.audit.record import AuditEntry, Event
from betrokken.audit.witness import LogProof
from betrokken.clock import utcnow
from betrokken.config.schema import Network, Purpose
from betrokken.coordinator import counts
from betrokken.coordinator.anchors import NodeAnchors
from betrokken.coordinator.fanout import (
    ANSWERED,
    FAILED,
    UNREACHABLE,
    NodeLink,
    NodeResult,
    fan_out,
)
from betrokken.coordinator.ratelimit import (
    RATE_LIMITED,
    DailyPersons,
    RateLimiter,
    RefusalCounter,
    Tally,
)
from betrokken.coordinator.store import AuditStore, Receipt
from betrokken.coordinator.witnesses import Cosigned, WitnessRounds
from betrokken.crypto import question as q
from betrokken.errors import (
    BadInput,
    BetrokkenError,
    MalformedMessage,
    QuestionRefused,
    RateLimited,
    VerificationError,
    WitnessQuorumMissing,
    WrongRole,
    escape_text,
    shown,
)
from betrokken.identity.names import Identity
from betrokken.identity.pins import NetworkPins, Pins
from betrokken.identity.rpc import claimed_identity, organisation_peer, servicer_method
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from betrokken.wire import log_proof_to_wire

log = logging.getLogger("betrokken.coordinator")
MAX_QUESTION_BYTES = 64 * 1024
MAX_PROOFS_PER_CALL = 10_000
FLUSH_SECONDS = 5.0  # how often counted refusals of past minutes become records


class CoordinatorServicer(pb_grpc.CoordinatorServicer):
    def __init__(
        self,
        network: Network,
        store: AuditStore,
        links: Mapping[str, NodeLink],
        *,
        pins: Pins | None = None,
        refusals: RefusalCounter | None = None,
        flush_every: float | None = FLUSH_SECONDS,
    ) -> None:
        self.network = network
        self.store = store
        self.links = dict(links)
        self.pins: Pins = pins or NetworkPins(network)  # the certificate allow-list
        per_minute = network.coordinator.rate_limit_per_minute
        self.limiter = RateLimiter(per_minute)
        self.proof_limiter = RateLimiter(per_minute, what="log-proof")
        self.persons = DailyPersons()
        self.refusals = refusals or RefusalCounter()
        # What each node cosigned, kept in the coordinator's database: a node whose database
        # went back is seen (coordinator/anchors.py).
        self.anchors = NodeAnchors(store.engine)
        self._counts_kept = False  # whether refusal_counts may hold rows of this process
        self.record_kept_refusals()  # what a coordinator killed mid-minute had counted
        if flush_every is not None:
            _start_flushing(self, flush_every)
        # What each node last said it witnessed, so its consistency proof is usually right the
        # first time (a node that witnessed more since answers WitnessStale and is asked again).
        self._witnessed: dict[str, int] = {}
        self._witnessed_lock = threading.Lock()
        self._in_flight: set[str] = set()  # answer ids recorded whose outcome is not yet
        # Cosigned before forwarded (docs/adr/0024, section 10): the witnesses' rounds.
        self.rounds = WitnessRounds(
            network,
            {org: link.cosign for org, link in self.links.items() if hasattr(link, "cosign")},
            self._latest_checkpoint,
            self.store.consistency_proof,
            sizes=self.anchors.sizes(),
            anchors=self.anchors,
        )

    def _latest_checkpoint(self) -> tuple[int, str] | None:
        latest = self.store.log.newest_checkpoint()
        return (latest.size, latest.note) if latest is not None else None

    # --- the question ----------------------------------------------------------------------------
    @servicer_method
    def Query(self, request: pb.QueryRequest, context: grpc.ServicerContext) -> pb.QueryResponse:
        method = "Coordinator.Query"
        try:
            peer = organisation_peer(context, method, self.network, self.pins)
        except BetrokkenError as exc:
            self._refused(claimed_identity(context), method, context, exc, request)
            raise
        requester = peer.organisation_id or ""
        try:
            self.limiter.check(requester)
            question, purpose = self._check(requester, request)
        except BetrokkenError as exc:
            self._refused(requester, method, context, exc, request)
            raise
        note = request.question
        # Recorded durably, under a signed checkpoint, before anything is forwarded (P6).
        index = self.store.append(
            rules.search_entry_for(question, note, purpose, utcnow(), context.peer())
        )
        with self._witnessed_lock:
            self._in_flight.add(question.answer_id)
        try:
            return self._forward(question, note, index, request, context)
        finally:
            with self._witnessed_lock:
                self._in_flight.discard(question.answer_id)

    def _forward(
        self,
        question: q.Question,
        note: str,
        index: int,
        request: pb.QueryRequest,
        context: grpc.ServicerContext,
    ) -> pb.QueryResponse:
        """Ask the nodes a recorded question and record its outcome."""
        started = time.monotonic()
        envelopes = {e.node: e.sealed for e in request.envelopes}
        # Forwarded only under a checkpoint that covers the record and that enough witnesses
        # cosigned: each node then answers only with `quorum` cosignatures besides its own.
        cosigned, short = self._cosigned(question, index, envelopes, started, context.peer())
        receipt = self.store.receipt(
            index, (cosigned.size, cosigned.note) if cosigned is not None else None
        )
        proofs: dict[int | None, pb.LogProof] = {}

        def build(org: str, witnessed: int | None) -> pb.LookupRequest:
            if witnessed not in proofs:
                proofs[witnessed] = log_proof_to_wire(self.store.log_proof(receipt, witnessed))
            return pb.LookupRequest(question=note, envelope=envelopes[org], proof=proofs[witnessed])

        with self._witnessed_lock:
            witnessed = dict(self._witnessed)
        for org, size in self.rounds.sizes().items():  # what each witness cosigned last
            witnessed[org] = max(size, witnessed.get(org, 0))
        for org in envelopes:  # a node whose database went back: never a "no" from it
            behind = self.anchors.behind(org)
            if behind is not None and org not in short:
                short[org] = NodeResult(
                    FAILED,
                    problem="not asked: its database went back (it accepted "
                    f"{behind.went_back_to or 0} records of the log, it had cosigned "
                    f"{behind.cosigned_size}); it may have lost registrations",
                )
        results = fan_out(
            {org: self.links[org] for org in envelopes if org in self.links and org not in short},
            build,
            self.network.coordinator.deadline_seconds - (time.monotonic() - started),
            witnessed,
            q.reply_size(question.persons),
        )
        results.update(short)
        for org in envelopes:  # a node this coordinator has no address for: never a "no"
            results.setdefault(org, NodeResult(UNREACHABLE, problem="no connection configured"))
        with self._witnessed_lock:
            for org, result in results.items():
                if result.witnessed_size is not None:
                    self._witnessed[org] = result.witnessed_size
                    self.rounds.witnessed(org, result.witnessed_size)
        results = {org: self._check_tags(question, org, r) for org, r in results.items()}
        replies = self._replies(question, results)
        complete = all(reply.status == ANSWERED for reply in replies)
        self.store.append(self._outcome(question, results, complete, context.peer()))
        return pb.QueryResponse(
            answer_id=question.answer_id,
            replies=replies,
            receipt=log_proof_to_wire(self._receipt(receipt, request.witnessed_size)),
            answered_at=q.format_time(utcnow()),
        )

    def _cosigned(
        self,
        question: q.Question,
        index: int,
        envelopes: Mapping[str, bytes],
        started: float,
        access_point: str,
    ) -> tuple[Cosigned | None, dict[str, NodeResult]]:
        """The cosigned checkpoint covering record ``index`` (None when the network has no
        other witnesses), and the nodes that cannot be asked under it: too few witnesses besides
        themselves cosigned it. Refuses the question (:class:`WitnessQuorumMissing`) when the
        requester could not trust it either; the refusal is the question's outcome record."""
        rounds = self.rounds
        if not rounds.needed:
            return None, {}
        deadline = started + self.network.coordinator.deadline_seconds
        try:
            cosigned = rounds.covering(index + 1, deadline)
            if cosigned.others(question.requester) < rounds.quorum:
                raise WitnessQuorumMissing(
                    "the question was not forwarded: too few witnesses besides the asking "
                    "organisation cosigned the log it is recorded in: "
                    + cosigned.explain(rounds.quorum, question.requester),
                    hint="this is not a 'no': ask again when the witnesses are back "
                    "(docs/operator.md, 'Witnesses')",
                )
        except WitnessQuorumMissing as exc:
            failed = {
                org: NodeResult(FAILED, problem="not asked: too few witnesses cosigned")
                for org in envelopes
            }
            outcome = self._outcome(question, failed, False, access_point)
            outcome.details["witnesses"] = escape_text(exc.message)[:1000]
            self.store.append(outcome)
            raise
        short = {
            org: NodeResult(
                FAILED,
                problem="not asked: fewer than "
                f"{rounds.quorum} witnesses besides this node cosigned the log: "
                + cosigned.explain(rounds.quorum, org)[:200],
            )
            for org in envelopes
            if cosigned.others(org) < rounds.quorum
        }
        return cosigned, short

    def _receipt(self, receipt: Receipt, witnessed: int) -> LogProof:
        return self.store.log_proof(receipt, witnessed if witnessed > 0 else None)

    def _check(self, requester: str, request: pb.QueryRequest) -> tuple[q.Question, Purpose]:
        note = request.question
        if not note or len(note.encode("utf-8")) > MAX_QUESTION_BYTES:
            raise BadInput("the request carries no signed question (or one that is too long)")
        claimed = q.peek_question(note)
        if claimed.requester != requester:
            raise WrongRole(
                f"the question is signed for '{claimed.requester}', but the certificate is "
                f"'{requester}'",
                hint="an organisation asks only with its own certificate and question key",
            )
        org = self.network.organisation(requester)
        if org is None or not org.question_key:
            raise WrongRole(f"organisation '{requester}' has no question key in the network file")
        try:
            question = q.verify_question(note, claimed, org.question_key)
        except VerificationError as exc:
            raise QuestionRefused(
                f"the question's signature does not verify: {exc.message}",
                kind="forged",
                hint="the requesting side must sign with the key the network file pins",
            ) from None
        if question.network != self.network.name:
            raise BadInput(f"the question is for network '{question.network[:64]}'")
        window = self.network.coordinator.freshness_seconds
        now = utcnow()
        if not rules.is_fresh(question.at, now, window):
            ahead = (question.at - now).total_seconds()
            raise QuestionRefused(
                f"the question was signed at {q.format_time(question.at)}, more than {window} "
                f"seconds from the coordinator's time {q.format_time(now)}: the asking side's "
                f"clock is {abs(ahead):.0f} s {'ahead of' if ahead > 0 else 'behind'} the "
                "coordinator's",
                kind="stale",
                hint="correct the asking side's clock (NTP; `betrokken doctor` checks it); if "
                "every asking organisation sees this, the coordinator's clock is the one off",
            )
        purpose = rules.check_may_ask(
            self.network, requester, question.purpose, question.role, question.on_behalf_of
        )
        rules.check_watch_days(purpose, question.watch_days)
        limit = self.network.coordinator.max_batch
        if not 1 <= question.persons <= limit:
            raise BadInput(
                f"a question holds 1 to {limit} persons, this one {question.persons}",
                hint="split the list into batches",
            )
        sent = {}
        for sealed in request.envelopes:
            if sealed.node in sent:
                raise MalformedMessage(f"two envelopes for node '{sealed.node[:64]}'")
            sent[sealed.node] = sealed.sealed
        # What it routes: one envelope for every node that looks something up, and no other.
        expected = {o.id for o in rules.nodes_to_ask(self.network, purpose.id, requester)}
        if set(sent) != expected:
            raise BadInput(
                "the question's envelopes are not for exactly the nodes that look something up "
                f"for '{purpose.id}' (expected: {', '.join(sorted(expected)) or 'none'})",
                hint="update the network file to the current one",
            )
        size = q.envelope_size(question.persons)
        for node, envelope in sent.items():
            if len(envelope) != size:
                raise MalformedMessage(f"the envelope for '{node}' is not of the padded size")
        # ... and exactly the envelopes the signed question commits to.
        if q.envelope_hashes(sent) != question.envelopes:
            raise MalformedMessage(
                "an envelope is missing or altered: the envelopes sent are not the ones the "
                "question commits to"
            )
        if self.store.asked_before(question.answer_id):
            raise QuestionRefused(
                f"question {question.answer_id} was asked before: a replay", kind="replay"
            )
        self.persons.count(requester, question.persons, self.network.daily_quota(requester))
        return question, purpose

    # --- replies and records ---------------------------------------------------------------------
    def _check_tags(self, question: q.Question, org_id: str, result: NodeResult) -> NodeResult:
        """An answered node's tags, checked against its pinned trail key before anything is
        recorded: tags that do not verify make the reply FAILED (never a "no")."""
        if result.status != ANSWERED:
            return result
        org = self.network.organisation(org_id)
        problem = ""
        if org is None or not org.log_key:
            problem = "the network file pins no trail key (log_key) for this node's tags"
        elif len(result.node_tags) != question.persons:
            problem = f"the node sent {len(result.node_tags)} tags for {question.persons} persons"
        else:
            try:
                q.verify_node_tags(
                    org.log_key,
                    result.tag_signature,
                    self.network.name,
                    question.answer_id,
                    org_id,
                    result.node_tags,
                )
            except (VerificationError, MalformedMessage) as exc:
                problem = exc.message
        if not problem:
            return result
        log.warning("node %s: its tags are refused: %s", org_id, problem)
        return NodeResult(FAILED, problem=f"unusable node tags: {problem}"[:300])

    def _replies(
        self, question: q.Question, results: Mapping[str, NodeResult]
    ) -> list[pb.NodeReply]:
        named: list[pb.NodeReply] = []
        anonymous: list[pb.NodeReply] = []
        order = {org.id: i for i, org in enumerate(self.network.organisations)}
        for org_id in sorted(results, key=lambda o: order.get(o, len(order))):
            org = self.network.organisation(org_id)
            assert org is not None
            result = results[org_id]
            label = rules.reply_label(self.network, org, question.purpose)
            domain_only = label.startswith(rules.DOMAIN_LABEL)
            reply = pb.NodeReply(
                label=label,
                status=cast(Any, result.status),
                reply=result.reply,
                # A domain-only member's transport problem would name it: say only what happened.
                problem=("no answer" if domain_only else result.problem)
                if result.status != ANSWERED
                else "",
            )
            (anonymous if domain_only else named).append(reply)
        # Members of one domain come back in an order that says nothing about who is who.
        anonymous.sort(key=lambda r: (r.label, r.status, r.reply))
        return named + anonymous

    def _outcome(
        self,
        question: q.Question,
        results: Mapping[str, NodeResult],
        complete: bool,
        access_point: str,
    ) -> AuditEntry:
        def nodes(status: int | None) -> str:
            return ",".join(
                sorted(
                    org
                    for org, r in results.items()
                    if (
                        r.status == status
                        if status is not None
                        else r.status not in (ANSWERED, UNREACHABLE)
                    )
                )
            )

        return AuditEntry(
            event=Event.OUTCOME,
            at=utcnow(),
            answer_id=question.answer_id,
            organisation=question.requester,
            role=question.role,
            access_point=access_point,
            purpose=question.purpose,
            completeness="complete" if complete else "partial",
            details={
                "asked": ",".join(sorted(results)),
                "answered": nodes(ANSWERED),
                "unreachable": nodes(UNREACHABLE),
                "failed": nodes(None),
                "replies": ",".join(
                    f"{org}={q.digest(r.reply)}" for org, r in sorted(results.items()) if r.reply
                ),
                "node_tags": node_tags_detail(results),
            },
        )

    # --- refusals: recorded, but counted once a caller keeps being refused ------------------------
    def _refused(
        self,
        caller: str,
        method: str,
        context: grpc.ServicerContext,
        exc: BetrokkenError,
        request: pb.QueryRequest | None = None,
    ) -> None:
        """Record a refusal on its own, or count it (docs/adr/0017); log it once either way."""
        kind = type(exc).__name__
        if not self.refusals.admit(caller, kind, method):
            if self.refusals.first_counted(caller, kind):
                log.warning(
                    "refusing %s calls of %s (%s); further ones this minute are counted in one "
                    "record",
                    kind,
                    shown(caller),
                    method,
                )
            return
        log.info("refused caller=%s method=%s reason=%s", shown(caller), method, kind)
        self.store.append(self._refusal_entry(caller, method, context, exc, request))

    def _refusal_entry(
        self,
        caller: str,
        method: str,
        context: grpc.ServicerContext,
        exc: BetrokkenError,
        request: pb.QueryRequest | None,
    ) -> AuditEntry:
        answer_id = purpose = role = persons = note = ""
        if request is not None:
            try:
                claimed = q.peek_question(request.question)
                answer_id, purpose, role = claimed.answer_id, claimed.purpose, claimed.role
                persons = str(claimed.persons)
                # The signed question holds only tags, so a DPO can still find a refused attempt
                # about a person for an access request.
                note = request.question
            except MalformedMessage:
                pass
        details = {"message": escape_text(exc.message)[:500], "persons": persons, "question": note}
        if method != "Coordinator.Query":
            details["method"] = method
        return AuditEntry(
            event=Event.REFUSAL,
            at=utcnow(),
            answer_id=answer_id,
            organisation=shown(caller),
            role=shown(role),
            access_point=context.peer(),
            purpose=shown(purpose),
            reason=type(exc).__name__,
            details={k: v for k, v in details.items() if v},
        )

    def flush_refusals(self, final: bool = False) -> int:
        """Write one record per counted kind, caller and finished minute; how many were written.
        The counts of minutes still running are then kept in the database (coordinator/counts.py),
        so a coordinator killed before its minute ends has them recorded when it starts again."""
        tallies = self.refusals.due(final)
        for tally in tallies:
            self.store.append(_tally_entry(tally))
            log.warning(
                "%d call(s) of %s refused (%s) in the minute from %s, counted in one record",
                tally.count,
                shown(tally.caller),
                tally.kind,
                f"{tally.minute:%H:%M}",
            )
        running = [] if final else self.refusals.pending()
        if running or self._counts_kept:  # no write while nobody is being refused
            try:
                counts.keep(self.store.engine, running)
                self._counts_kept = bool(running)
            except SQLAlchemyError as exc:  # still counted in memory; kept at the next flush
                log.error("counted refusals could not be kept yet: %s", type(exc).__name__)
        return len(tallies)

    def record_kept_refusals(self) -> int:
        """Record the counts a coordinator that was killed mid-minute kept, marked as such."""
        try:
            found = counts.kept(self.store.engine)
        except SQLAlchemyError as exc:
            log.error("kept refusal counts could not be read: %s", type(exc).__name__)
            return 0
        for tally in found:
            self.store.append(_tally_entry(tally, kept_through_a_stop=True))
            log.warning(
                "%d call(s) of %s refused (%s) in the minute from %s, counted before the "
                "coordinator stopped: recorded now",
                tally.count,
                shown(tally.caller),
                tally.kind,
                f"{tally.minute:%H:%M}",
            )
        if found:
            counts.keep(self.store.engine, [])
        return len(found)

    def _proof_caller(self, context: grpc.ServicerContext, method: str) -> Identity:
        """The organisation asking for a log proof: authenticated, allowed, within its limit."""
        try:
            peer = organisation_peer(context, method, self.network, self.pins)
        except BetrokkenError as exc:
            self._refused(claimed_identity(context), method, context, exc)
            raise
        try:
            self.proof_limiter.check(peer.organisation_id or "")
        except RateLimited as exc:
            self._refused(peer.organisation_id or "", method, context, exc)
            raise
        return peer

    # --- the log, for witnesses and receipts ----------------------------------------------------
    @servicer_method
    def GetCheckpoint(
        self, request: pb.CheckpointRequest, context: grpc.ServicerContext
    ) -> pb.CheckpointResponse:
        self._proof_caller(context, "Coordinator.GetCheckpoint")
        latest = self.store.log.latest_checkpoint()
        # Its clock, for the node to measure the offset of the two (docs/adr/0042).
        return pb.CheckpointResponse(
            checkpoint=latest.note if latest else "", time=q.format_time(utcnow())
        )

    @servicer_method
    def GetConsistencyProof(
        self, request: pb.ConsistencyRequest, context: grpc.ServicerContext
    ) -> pb.ProofResponse:
        peer = self._proof_caller(context, "Coordinator.GetConsistencyProof")
        hashes = self.store.consistency_proof(request.old_size, request.new_size)
        if peer.organisation_id:  # the witness will now accept new_size
            with self._witnessed_lock:
                self._witnessed[peer.organisation_id] = request.new_size
            self.rounds.witnessed(peer.organisation_id, request.new_size)
        return pb.ProofResponse(hashes=hashes)

    @servicer_method
    def GetConsistencyProofs(
        self, request: pb.ConsistencyBatchRequest, context: grpc.ServicerContext
    ) -> pb.ProofBatchResponse:
        self._proof_caller(context, "Coordinator.GetConsistencyProofs")
        if len(request.old_sizes) > MAX_PROOFS_PER_CALL:
            raise BadInput(f"at most {MAX_PROOFS_PER_CALL} proofs per call")
        # Every node confirms the checkpoints it was shown against one newest size: made once.
        proofs = self.store.consistency_proofs(list(request.old_sizes), request.new_size)
        return pb.ProofBatchResponse(proofs=[pb.ProofResponse(hashes=p) for p in proofs])

    @servicer_method
    def GetInclusionProof(
        self, request: pb.InclusionRequest, context: grpc.ServicerContext
    ) -> pb.ProofResponse:
        self._proof_caller(context, "Coordinator.GetInclusionProof")
        hashes = self.store.log.inclusion_proof(request.leaf_index, request.tree_size)
        return pb.ProofResponse(hashes=hashes)

    def _asking(self, answer_id: str) -> bool:
        with self._witnessed_lock:
            return answer_id in self._in_flight

    @servicer_method
    def GetRecord(
        self, request: pb.RecordRequest, context: grpc.ServicerContext
    ) -> pb.RecordResponse:
        """A question's record as stored, for a node that question was sent to (docs/adr/0042);
        a node asking for another's record is refused, and the refusal recorded."""
        method = "Coordinator.GetRecord"
        peer = self._proof_caller(context, method)
        caller = peer.organisation_id or ""
        try:
            record, hashes = self.store.record_for_node(
                request.leaf_index, request.tree_size, caller, self._asking
            )
        except WrongRole as exc:
            self._refused(caller, method, context, exc)
            raise
        return pb.RecordResponse(record=record, hashes=hashes)


def node_tags_detail(results: Mapping[str, NodeResult]) -> str:
    """The answered nodes' signed tags, as the answered record keeps them."""
    return q.node_tags_record(
        {
            org: q.NodeTags(tuple(r.node_tags), r.tag_signature)
            for org, r in results.items()
            if r.status == ANSWERED
        }
    )


def _tally_entry(tally: Tally, kept_through_a_stop: bool = False) -> AuditEntry:
    details = {
        "count": str(tally.count),
        "minute": f"{tally.minute:%Y-%m-%dT%H:%MZ}",
        "methods": ",".join(tally.methods),
        "counted": "refusals of this kind in this minute beyond those recorded one by one"
        if tally.kind != RATE_LIMITED
        else "calls refused by the rate limit in this minute",
    }
    if kept_through_a_stop:
        details["kept"] = (
            "counted up to the coordinator's last flush before it stopped without writing them "
            "(a later record of the same minute may count the rest; one that was written just "
            "before the stop may be counted again here)"
        )
    return AuditEntry(
        event=Event.REFUSAL,
        at=utcnow(),
        organisation=shown(tally.caller),
        reason=tally.kind,
        details=details,
    )


def _start_flushing(servicer: CoordinatorServicer, every: float) -> None:
    """Write counted refusals every few seconds, and what is left when the process ends."""
    ref = weakref.ref(servicer)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            alive = ref()
            if alive is None:
                return
            try:
                alive.flush_refusals()
            except BetrokkenError as exc:  # the log is unavailable: keep counting, try again
                log.error("counted refusals could not be recorded yet: %s", exc.message)
            try:
                alive.anchors.flush()
            except Exception as exc:  # kept in memory; written at the next flush
                log.error("the nodes' anchors could not be written yet: %s", exc)
            del alive

    def at_exit() -> None:
        stop.set()
        alive = ref()
        if alive is not None:
            try:
                alive.flush_refusals(final=True)
            except BetrokkenError as exc:
                log.error("counted refusals could not be recorded at exit: %s", exc.message)
            try:
                alive.anchors.flush()
            except Exception as exc:
                log.error("the nodes' anchors could not be written at exit: %s", exc)

    threading.Thread(target=loop, daemon=True, name="refusal-counts").start()
    atexit.register(at_exit)
