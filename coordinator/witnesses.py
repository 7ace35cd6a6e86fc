"""Cosigning rounds: a question is forwarded only under a checkpoint its witnesses cosigned.

After recording a question, the coordinator waits for a checkpoint that covers the record and
carries cosignatures (C2SP tlog-cosignature/v1) of enough witnesses — the nodes named in the
network file (``coordinator.witnesses``, default every node). Cosignatures are collected on
demand, in rounds:

* a round asks, at once, as many witnesses as it needs for every party to find ``quorum``
  cosignatures besides its own (``Node.Cosign``, with a consistency proof from the size the
  witness last accepted) — taking turns, so the work is spread over all witnesses — and asks
  one more for each that refuses or cannot be reached, and all the rest when the first ones
  are slow; it ends when enough cosigned, when nobody is left to ask, or at the deadline;
* rounds never overlap: a question recorded while a round is under way waits for the next one,
  which then covers every question recorded meanwhile (under load one round serves many);
* a witness that accepted another size than assumed answers ``WitnessStale`` with its size and
  is asked again with the right proof; one that refuses (it saw another history) is named.

Fewer valid cosignatures than the quorum: the round fails and the questions it was to cover are
refused with :class:`~betrokken.errors.WitnessQuorumMissing`, naming each witness that did not
cosign and why — never an answer, never a "no".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

from betrokken.audit.witness import witness_cosigners
from betrokken.config.schema import Network
from betrokken.coordinator.anchors import NodeAnchors
from betrokken.coordinator.fanout import Arrivals
from betrokken.crypto.cosignature import Cosigner, add_cosignatures, verify_cosignatures
from betrokken.errors import BetrokkenError, WitnessQuorumMissing, WitnessStale
from betrokken.v1 import betrokken_pb2 as pb

log = logging.getLogger("betrokken.coordinator")
RETRIES = 3  # a witness whose state moved is asked again, a few times at most per round
# The rest of the witnesses are asked when the first ones take longer than this many times a
# usual round (bounded): a slow witness costs a question a little, not the deadline.
HEDGE_FACTOR = 4.0
HEDGE_BOUNDS = (0.1, 1.0)  # seconds


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint with the cosignatures a round collected."""

    size: int
    note: str  # the coordinator's signed note with the cosignature lines
    cosigners: frozenset[str]
    missing: Mapping[str, str] = field(default_factory=dict)  # witness -> why not

    def others(self, party: str) -> int:
        """How many witnesses besides ``party`` cosigned."""
        return len(self.cosigners - {party})

    def explain(self, quorum: int, party: str | None = None) -> str:
        others = sorted(self.cosigners - {party} if party else self.cosigners)
        why = "; ".join(f"{w}: {p}" for w, p in sorted(self.missing.items())) or "none"
        return (
            f"{len(others)} of the witnesses cosigned the log of {self.size} records "
            f"({', '.join(others) or 'none'}), {quorum} are needed; not cosigned by: {why}"
        )


Cosign = Callable[[pb.CosignRequest, float], "Future[pb.CosignResponse]"]
Latest = Callable[[], tuple[int, str] | None]  # the newest checkpoint: (size, signed note)
Proof = Callable[[int, int], list[bytes]]  # consistency proof (old size, new size)


class WitnessRounds:
    """Collects cosignatures for the coordinator's questions, one round at a time."""

    def __init__(
        self,
        network: Network,
        cosign: Mapping[str, Cosign],
        latest: Latest,
        proof: Proof,
        *,
        sizes: Mapping[str, int] | None = None,
        anchors: NodeAnchors | None = None,
    ) -> None:
        self.quorum = network.witness_quorum()
        self.cosigners: dict[str, Cosigner] = witness_cosigners(network)
        self.witnesses = [w for w in network.witness_ids() if w in self.cosigners]
        self.cosign = dict(cosign)
        self.latest = latest
        self.proof = proof
        self.anchors = anchors  # what each witness cosigned before (coordinator/anchors.py)
        # Enough for every party: `quorum` others even for a party that cosigned itself.
        self.enough = min(self.quorum + 1, len(self.witnesses))
        self._cond = threading.Condition()
        self._running = False
        self._last: Cosigned | None = None  # the newest round that reached the quorum
        self._failed: Cosigned | None = None  # the newest round that did not
        self._sizes: dict[str, int] = dict(sizes or {})  # what each witness last accepted
        self._turn = 0  # where the next round starts asking (the witnesses take turns)
        self._usual = 0.05  # seconds a round usually takes (moving average)
        # Witnesses that did not answer the last round they were asked in before it ended (a hung
        # node): asked last until they answer again, so a round does not wait for them first.
        self._silent: set[str] = set()

    @property
    def needed(self) -> bool:
        return self.quorum > 0

    def witnessed(self, witness: str, size: int) -> None:
        """What a witness said it accepted (its lookups' answers, its witness calls)."""
        with self._cond:
            if size > self._sizes.get(witness, -1):
                self._sizes[witness] = size

    def sizes(self) -> dict[str, int]:
        """What each witness accepted last, as far as this coordinator knows."""
        with self._cond:
            return dict(self._sizes)

    def covering(self, size: int, deadline: float) -> Cosigned:
        """A checkpoint of at least ``size`` records with the quorum's cosignatures, waiting
        for (or running) the rounds it takes; :class:`WitnessQuorumMissing` when the round that
        covered ``size`` did not reach the quorum, or none did before ``deadline`` (monotonic)."""
        with self._cond:
            while True:
                last, failed = self._last, self._failed
                if last is not None and last.size >= size:
                    return last
                if failed is not None and failed.size >= size:
                    raise self._missing(failed)
                if not self._running:
                    self._running = True
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WitnessQuorumMissing(
                        "no checkpoint covering the question was cosigned in time",
                        hint="the witnesses answer slowly or not at all; see the coordinator's "
                        "log and docs/operator.md, 'Witnesses'",
                    )
                self._cond.wait(left)
        result: Cosigned | None = None
        try:
            result = self._round(deadline)
        finally:
            with self._cond:
                self._running = False
                if result is not None:
                    if len(result.cosigners) >= self.quorum and result.cosigners:
                        if self._last is None or result.size >= self._last.size:
                            self._last = result
                    elif self._failed is None or result.size >= self._failed.size:
                        self._failed = result
                self._cond.notify_all()
        return self.covering(size, deadline)

    def _missing(self, failed: Cosigned) -> WitnessQuorumMissing:
        return WitnessQuorumMissing(
            "the question was not forwarded: too few witnesses cosigned the log it is recorded "
            "in, so no node may answer under it: " + failed.explain(self.quorum),
            hint="this is not a 'no': ask again when the witnesses are back; their operators "
            "see why in their nodes' logs (docs/operator.md, 'Witnesses')",
        )

    def _request(self, witness: str, size: int, note: str) -> pb.CosignRequest:
        old = self._sizes.get(witness, 0)
        proof = self.proof(old, size) if 0 < old < size else []
        return pb.CosignRequest(checkpoint=note, old_size=old, consistency_proof=proof)

    def _round(self, deadline: float) -> Cosigned:
        newest = self.latest()
        if newest is None:
            return Cosigned(0, "", frozenset(), {"(log)": "the log is empty"})
        size, note = newest
        asked: dict[Future[pb.CosignResponse], str] = {}
        arrivals: Arrivals[pb.CosignResponse] = Arrivals()
        lines: dict[str, str] = {}
        missing: dict[str, str] = {}
        tries: dict[str, int] = {}

        def ask(witness: str) -> None:
            left = max(deadline - time.monotonic(), 0.001)
            try:
                future = self.cosign[witness](self._request(witness, size, note), left)
            except BetrokkenError as exc:
                missing[witness] = exc.message
                return
            asked[arrivals.add(future)] = witness

        started = time.monotonic()
        turn = self._turn % max(len(self.witnesses), 1)
        self._turn += self.enough
        order = self.witnesses[turn:] + self.witnesses[:turn]
        with self._cond:
            silent = set(self._silent)
        order = [w for w in order if w not in silent] + [w for w in order if w in silent]
        spare = [w for w in order if w in self.cosign]
        for witness in order:
            if witness not in self.cosign:
                missing[witness] = "no connection configured"
        for witness in spare[: self.enough]:
            ask(witness)
        spare = spare[self.enough :]
        hedge_at = started + min(max(HEDGE_FACTOR * self._usual, HEDGE_BOUNDS[0]), HEDGE_BOUNDS[1])
        pending = set(asked)

        def one_more() -> None:
            if spare:
                before = set(asked)
                ask(spare.pop(0))
                pending.update(set(asked) - before)

        while (pending or spare) and len(lines) < self.enough:
            now = time.monotonic()
            if now >= deadline:
                break
            if not pending or (spare and now >= hedge_at):  # slow, or nobody left: ask the rest
                while spare:
                    one_more()
                continue
            until = deadline if not spare else min(deadline, hedge_at)
            arrived = arrivals.next(until - now)
            if arrived is None:  # the hedge or the deadline: looked at again above
                continue
            pending.discard(arrived)
            for future in (arrived,):
                witness = asked[future]
                try:
                    response = future.result()
                except WitnessStale as exc:
                    if self.anchors is not None and not self.anchors.accepted(
                        witness, exc.witnessed_size
                    ):
                        missing[witness] = (
                            f"its database went back: it accepted {exc.witnessed_size} records, "
                            "fewer than it cosigned before"
                        )
                        one_more()
                        continue
                    tries[witness] = tries.get(witness, 0) + 1
                    if exc.witnessed_size > size or tries[witness] > RETRIES:
                        missing[witness] = f"it accepted {exc.witnessed_size} records"
                        continue
                    with self._cond:
                        self._sizes[witness] = exc.witnessed_size
                    before = set(asked)
                    ask(witness)
                    pending |= set(asked) - before
                    continue
                except Exception as exc:  # refused, unreachable, failed: named, never hidden
                    missing[witness] = _why(exc)
                    one_more()
                    continue
                line = response.cosignature
                valid = verify_cosignatures(
                    add_cosignatures(note, [line]) if line.endswith("\n") else note,
                    {witness: self.cosigners[witness]},
                )
                if witness not in valid:
                    missing[witness] = "its cosignature does not verify"
                    one_more()
                    continue
                lines[witness] = valid[witness].line
                self.witnessed(witness, size)
                if self.anchors is not None:
                    self.anchors.cosigned(witness, size)
                    # Its signed time against ours: each node's clock, measured every round.
                    self.anchors.clock(witness, valid[witness].timestamp - time.time())
        if len(lines) >= self.enough:
            took = time.monotonic() - started
            self._usual = 0.8 * self._usual + 0.2 * took
        with self._cond:
            self._silent.difference_update(lines)
            self._silent.update(asked[future] for future in pending)
        for future in pending:  # late answers still tell what the witness accepted
            witness = asked[future]
            missing.setdefault(witness, "did not answer in time")
            future.add_done_callback(self._late(witness, size))
        for witness in spare:
            missing.setdefault(witness, "not asked: the round ended")
        for witness in lines:
            missing.pop(witness, None)
        cosigned = Cosigned(
            size,
            add_cosignatures(note, [lines[w] for w in sorted(lines)]),
            frozenset(lines),
            {w: p for w, p in missing.items() if w not in lines},
        )
        if len(lines) < self.quorum:
            log.warning("cosigning round failed: %s", cosigned.explain(self.quorum))
        return cosigned

    def _late(self, witness: str, size: int) -> Callable[[Future[pb.CosignResponse]], None]:
        def done(future: Future[pb.CosignResponse]) -> None:
            if future.cancelled():
                return
            failure = future.exception()
            if failure is None:
                with self._cond:
                    self._silent.discard(witness)  # slow, not hung: asked in turn again
                self.witnessed(witness, size)
                if self.anchors is not None:
                    self.anchors.cosigned(witness, size)
            elif isinstance(failure, WitnessStale) and (
                self.anchors is None or self.anchors.accepted(witness, failure.witnessed_size)
            ):
                self.witnessed(witness, failure.witnessed_size)

        return done


def _why(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message)[:200]
