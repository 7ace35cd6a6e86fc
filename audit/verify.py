"""Checking a whole audit log: every record, every checkpoint, and what others witnessed.

Recomputes each leaf from the stored record, the root at every signed checkpoint, checks every
signature, and proves the log extends each checkpoint that a witness (a node) accepted earlier.
Also checks the stored subtree hashes proofs are made from (ADR 0010) against the stored leaf
hashes, in the same pass over the records, and — given the network file — every node's signature
over the tags the coordinator recorded in a question's answered record (ADR 0024: a tag that
does not verify is one the coordinator wrote itself). Reports every problem with the first index
it concerns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from betrokken.audit.log import AuditLog, entry_from_leaf
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import Network
from betrokken.crypto import merkle
from betrokken.crypto.note import open_checkpoint
from betrokken.crypto.question import read_node_tags, verify_node_tags
from betrokken.errors import MalformedMessage, VerificationError


@dataclass(frozen=True)
class Problem:
    index: int
    message: str


@dataclass
class Verification:
    size: int = 0
    pruned: int = 0
    checkpoints: int = 0
    witnessed: int = 0
    node_tags: int = 0  # node signatures over recorded tags that were checked
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_index(self) -> int | None:
        return min((p.index for p in self.problems), default=None)

    def summary(self) -> str:
        if self.ok:
            return (
                f"audit log verified: {self.size} records ({self.pruned} pruned, hashes kept), "
                f"{self.checkpoints} signed checkpoints, {self.witnessed} witnessed checkpoints"
                + (f", {self.node_tags} nodes' signed tags" if self.node_tags else "")
                + "; nothing altered, removed or reordered"
            )
        first = self.first_bad_index
        lines = [f"audit log FAILED verification: first bad record index {first}"]
        lines += [f"  record {p.index}: {p.message}" for p in sorted(self.problems, key=_key)]
        return "\n".join(lines)


def _key(problem: Problem) -> int:
    return problem.index


def split_notes(text: str) -> list[str]:
    """Split concatenated signed notes (as `betrokken node witnessed` prints them)."""
    notes: list[str] = []
    current: list[str] = []
    in_signatures = False
    for line in text.splitlines(keepends=True):
        if in_signatures and not line.startswith("\u2014 "):
            notes.append("".join(current))
            current, in_signatures = [], False
            if line.strip() == "":
                continue
        if not in_signatures and line == "\n" and current:
            in_signatures = True
        current.append(line)
    if current and in_signatures:
        notes.append("".join(current))
    return notes


@dataclass
class _Mismatch:
    start: int  # the records a subtree covers: start..end-1
    end: int
    what: str
    enclosing: int = 0  # the subtrees around it that cannot match either
    reach: tuple[int, int] = (0, 0)  # the records the largest of those covers


REBUILD_HINT = (
    "proofs that use it cannot be made; subtree hashes are derived data: emptying the table "
    "log_subtrees rebuilds it from the records at the next start"
)


class _SubtreeCheck:
    """Compares the stored subtree hashes with the ones the stored leaf hashes give.

    Fed one stored leaf hash at a time, it reads the stored hashes alongside in position order
    (the order appends complete subtrees), so the whole check is one pass. A subtree that does
    not match is reported at the last record it covers; the subtrees enclosing it, which then
    cannot match either, are counted with it rather than listed.
    """

    def __init__(self, stored: Iterator[tuple[int, bytes]]) -> None:
        self.stored = stored
        self.current = next(stored, None)
        self.frontier = merkle.Frontier()
        self.found: list[_Mismatch] = []

    def add(self, leaf: bytes) -> None:
        for level, index, expected in self.frontier.append(leaf):
            position = merkle.stored_position(level, index)
            while self.current is not None and self.current[0] < position:
                self._report(*merkle.subtree_at(self.current[0]), "is stored where none belongs")
                self.current = next(self.stored, None)
            if self.current is None or self.current[0] > position:
                self._report(level, index, "is missing")
            else:
                if self.current[1] != expected:
                    self._report(level, index, "does not match their leaf hashes (altered)")
                self.current = next(self.stored, None)

    def _report(self, level: int, index: int, what: str) -> None:
        start, end = merkle.subtree_range(level, index)
        last = self.found[-1] if self.found else None
        if last and last.what == what and start <= last.reach[0] and last.reach[1] <= end:
            last.enclosing += 1
            last.reach = (start, end)
            return
        self.found.append(_Mismatch(start, end, what, reach=(start, end)))

    def problems(self, size: int) -> list[Problem]:
        """What was found; ``size`` is how many records were checked."""
        problems = []
        for found in self.found:
            last = found.end - 1
            extra = f" (and {found.enclosing} enclosing ones)" if found.enclosing else ""
            problems.append(
                Problem(
                    last,
                    f"the stored subtree hash over records {found.start}..{last}{extra} "
                    f"{found.what}: {REBUILD_HINT}",
                )
            )
        beyond = 0
        while self.current is not None:
            beyond += 1
            self.current = next(self.stored, None)
        if beyond:
            problems.append(
                Problem(
                    size,
                    f"{beyond} stored subtree hashes cover records from {size} on, which are not "
                    "stored: records were removed",
                )
            )
        return problems


def _node_tag_problems(entry: AuditEntry, network: Network) -> tuple[int, list[str]]:
    """How many node signatures an answered record holds, and what is wrong with them."""
    try:
        recorded = read_node_tags(entry.details.get("node_tags", ""))
    except MalformedMessage as exc:
        return 0, [exc.message]
    problems = []
    for node, signed in recorded.items():
        org = network.organisation(node)
        if org is None or not org.log_key:
            problems.append(f"tags of '{node}', which has no trail key in the network file")
            continue
        try:
            verify_node_tags(
                org.log_key, signed.signature, network.name, entry.answer_id, node, signed.tags
            )
        except (VerificationError, MalformedMessage) as exc:
            problems.append(exc.message)
    return len(recorded), problems


def verify_log(
    log: AuditLog,
    verifier: str,
    witnessed: Sequence[str] = (),
    network: Network | None = None,
) -> Verification:
    """Check ``log`` against its signing key, the checkpoints witnesses accepted and, with
    ``network``, the nodes' signatures over the tags its answered records hold."""
    result = Verification()
    leaves: list[bytes] = []
    subtrees = _SubtreeCheck(log.stored_subtrees())
    for position, record in enumerate(log.records()):
        if record.index != position:
            result.problems.append(
                Problem(position, f"missing: the next stored record is {record.index}")
            )
            break
        subtrees.add(record.leaf_hash)
        leaf = record.leaf_hash
        if record.content is None:
            result.pruned += 1
        else:
            entry: AuditEntry | None = None
            try:
                claimed, entry = entry_from_leaf(record.content)
            except MalformedMessage as exc:
                result.problems.append(Problem(position, f"content is unreadable ({exc.message})"))
                claimed = position
            if network is not None and entry is not None and entry.event is Event.OUTCOME:
                checked, wrong = _node_tag_problems(entry, network)
                result.node_tags += checked
                result.problems += [
                    Problem(position, f"node tags not signed by the node: {w}") for w in wrong
                ]
            if claimed != position:
                result.problems.append(
                    Problem(position, f"holds record {claimed} (records moved or reordered)")
                )
            leaf = merkle.leaf_hash(record.content.encode())
            if leaf != record.leaf_hash:
                result.problems.append(
                    Problem(position, "content does not match its leaf hash (altered)")
                )
        leaves.append(leaf)
    result.size = len(leaves)
    result.problems += subtrees.problems(result.size)
    head = log.size()
    if head != result.size:
        result.problems.append(
            Problem(
                min(head, result.size),
                f"the log head says {head} records, {result.size} are stored",
            )
        )

    # Roots of every prefix that has a checkpoint, in one pass.
    checkpoints = {c.size: c for c in log.checkpoints()}
    result.checkpoints = len(checkpoints)
    roots: dict[int, bytes] = {}
    mismatch_reported = False
    frontier = merkle.Frontier()
    wanted = set(checkpoints)
    for leaf in leaves:
        frontier.append(leaf)
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
    for size in sorted(checkpoints):
        stored = checkpoints[size]
        try:
            opened = open_checkpoint(stored.note, verifier, log.origin)
        except (VerificationError, MalformedMessage) as exc:
            result.problems.append(Problem(max(size - 1, 0), f"checkpoint {size}: {exc.message}"))
            continue
        if opened.size != size or opened.root != stored.root:
            result.problems.append(
                Problem(max(size - 1, 0), f"checkpoint {size}: stored size or root was changed")
            )
            continue
        if size > result.size:
            result.problems.append(
                Problem(
                    result.size,
                    f"a checkpoint was signed for {size} records but only {result.size} are "
                    f"stored: records {result.size}..{size - 1} were removed",
                )
            )
        elif roots.get(size) != opened.root and not mismatch_reported:
            mismatch_reported = True  # later checkpoints follow from this one: say it once
            result.problems.append(
                Problem(
                    size - 1,
                    f"the first {size} records do not match checkpoint {size} "
                    "(later checkpoints include these records too)",
                )
            )
    for note in witnessed:
        result.witnessed += 1
        try:
            seen = open_checkpoint(note, verifier, log.origin)
        except (VerificationError, MalformedMessage) as exc:
            result.problems.append(Problem(0, f"a witnessed checkpoint is invalid: {exc.message}"))
            continue
        if seen.size > result.size:
            result.problems.append(
                Problem(
                    result.size,
                    f"a witness accepted {seen.size} records, the log now has {result.size}: "
                    "rolled back",
                )
            )
        elif merkle.root(leaves[: seen.size]) != seen.root:
            result.problems.append(
                Problem(
                    max(seen.size - 1, 0),
                    f"the log does not extend the checkpoint of {seen.size} records a witness "
                    "accepted: history was rewritten (fork)",
                )
            )
    return result
