"""Checking a whole audit log: every record, every checkpoint, and what others witnessed.

Recomputes each leaf from the stored record, the root at every signed checkpoint, checks every
signature, and proves the log extends each checkpoint that a witness (a node) accepted earlier.
Reports every problem with the first index it concerns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from betrokken.audit.log import AuditLog, entry_from_leaf
from betrokken.crypto import merkle
from betrokken.crypto.note import open_checkpoint
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
                f"{self.checkpoints} signed checkpoints, {self.witnessed} witnessed checkpoints; "
                "nothing altered, removed or reordered"
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


def verify_log(log: AuditLog, verifier: str, witnessed: Sequence[str] = ()) -> Verification:
    result = Verification()
    leaves: list[bytes] = []
    for position, record in enumerate(log.records()):
        if record.index != position:
            result.problems.append(
                Problem(position, f"missing: the next stored record is {record.index}")
            )
            break
        leaf = record.leaf_hash
        if record.content is None:
            result.pruned += 1
        else:
            try:
                claimed, _ = entry_from_leaf(record.content)
            except MalformedMessage as exc:
                result.problems.append(Problem(position, f"content is unreadable ({exc.message})"))
                claimed = position
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
