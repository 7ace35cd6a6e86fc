"""A node's anchor: what its database held, kept outside it, so a lost database is never empty.

A node that comes back on an empty database (deleted, a lost WAL, a wrong volume) or on an older
one (a copy from last month) would answer "not involved" for every registration it lost: a false
"no" (P5). So the node keeps a small **state file** in its configuration folder
(``state_file``, default ``node.state``): a signed note (with the node's own trail key, the key the
network file pins) naming

* the size and root of its trail (every registration change is a trail record, so the trail only
  grows; retention empties old records' content but keeps their leaf hashes),
* the leaf hash of its first trail record (its identity: another database has another one),
* how many registrations were active and the size of the coordinator's log it had witnessed.

The running node writes it at start, every expiry interval and when it stops; the commands that
change registrations write it after their change. At start the node compares: a trail smaller than
the anchored one, or one whose root at the anchored size differs, is refused with
:class:`~betrokken.errors.DataLost` (exit code 11) — restore the backup, or ``node reset --confirm``
(recorded in the trail) to go on with this database knowingly.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.crypto.note import NoteKey, open_note, sign_note
from betrokken.errors import BetrokkenError, DataLost, MalformedMessage, VerificationError

HEADER = "betrokken node state v1"
FIELDS = (
    "organisation",
    "trail_size",
    "trail_root",
    "first_record",
    "active",
    "witnessed_size",
    "written_at",
)


@dataclass(frozen=True)
class Anchor:
    organisation: str
    trail_size: int
    trail_root: str  # hex of the trail's root at trail_size ("" when empty)
    first_record: str  # hex of the first record's leaf hash ("" when empty)
    active: int
    witnessed_size: int
    written_at: dt.datetime

    def body(self) -> bytes:
        values = {
            "organisation": self.organisation,
            "trail_size": str(self.trail_size),
            "trail_root": self.trail_root or "-",
            "first_record": self.first_record or "-",
            "active": str(self.active),
            "witnessed_size": str(self.witnessed_size),
            "written_at": self.written_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        }
        return ("\n".join([HEADER, *(f"{k} {values[k]}" for k in FIELDS)]) + "\n").encode()

    def when(self) -> str:
        return f"{self.written_at:%Y-%m-%d %H:%M} UTC"


def _parse(body: str) -> Anchor:
    lines = body.rstrip("\n").split("\n")
    if not lines or lines[0] != HEADER:
        raise MalformedMessage("not a betrokken node state file")
    values = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    try:
        return Anchor(
            organisation=values["organisation"],
            trail_size=int(values["trail_size"]),
            trail_root="" if values["trail_root"] == "-" else values["trail_root"],
            first_record="" if values["first_record"] == "-" else values["first_record"],
            active=int(values["active"]),
            witnessed_size=int(values["witnessed_size"]),
            written_at=dt.datetime.fromisoformat(values["written_at"]),
        )
    except (KeyError, ValueError):
        raise MalformedMessage("the node state file lacks a field or has a bad value") from None


def read_anchor(path: Path, verifier: str) -> Anchor | None:
    """The anchor on file (None when there is none yet); a file that does not verify is refused."""
    try:
        note = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataLost(
            f"{path}: het statusbestand van de node is niet leesbaar ({exc})\n"
            f"{path}: the node's state file cannot be read ({exc})",
            hint="zet het terug uit de back-up van de configuratiemap / restore it from the "
            "backup of the configuration folder",
        ) from None
    try:
        return _parse(open_note(note, verifier))
    except (MalformedMessage, VerificationError) as exc:
        raise DataLost(
            f"{path}: het statusbestand van de node is niet door de eigen sleutel van de node "
            f"ondertekend of beschadigd ({exc.message})\n"
            f"{path}: the node's state file is not signed by the node's own key or is damaged "
            f"({exc.message})",
            hint="zet het terug uit de back-up van de configuratiemap, of `betrokken node reset "
            "--confirm` schrijft een nieuw (vastgelegd in het spoor) / restore it from the "
            "backup of the configuration folder, or `betrokken node reset --confirm` writes a "
            "new one (recorded in the trail)",
        ) from None


def write_anchor(path: Path, anchor: Anchor, signer: NoteKey) -> None:
    """Write ``anchor`` atomically (a temporary file renamed over the old one), mode 0600."""
    note = sign_note(anchor.body(), signer)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(note)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def measure(
    trail: AuditLog, organisation: str, active: int, witnessed_size: int, now: dt.datetime
) -> Anchor:
    """The anchor of the database as it is now."""
    size = trail.size()
    first = ""
    root = ""
    if size:
        first = next(iter(trail.records(start=0, indices=[0])), None).leaf_hash.hex()  # type: ignore[union-attr]
        root = trail.root(size).hex()
    return Anchor(organisation, size, root, first, active, witnessed_size, now)


NEXT_STEPS_NL = (
    "zet de back-up terug (`betrokken restore --config node.toml BESTAND`) en importeer wat "
    "sindsdien veranderde, of ga bewust verder met deze database: `betrokken node reset --config "
    "node.toml --confirm` (vastgelegd in het spoor)"
)
NEXT_STEPS_EN = (
    "restore the backup (`betrokken restore --config node.toml FILE`) and import what changed "
    "since, or go on with this database knowingly: `betrokken node reset --config node.toml "
    "--confirm` (recorded in the trail)"
)


def problem(anchor: Anchor, trail: AuditLog) -> tuple[str, str] | None:
    """Why the database in ``trail`` is not the one ``anchor`` describes (Dutch, English), or
    None when it holds at least what was anchored."""
    size = trail.size()
    records, active, when = f"{anchor.trail_size:,}", f"{anchor.active:,}", anchor.when()
    was = f"{records} record(s), {active} actieve registratie(s) op {when}"
    was_en = f"{records} record(s), {active} active registration(s) at {when}"
    if size == 0 and anchor.trail_size > 0:
        return (
            f"de database van de node is leeg, maar had {was}",
            f"the node's database is empty, but held {was_en}",
        )
    if size < anchor.trail_size:
        return (
            f"de database van de node is ouder dan haar anker: spoor van {size:,} records, "
            f"had {was}",
            f"the node's database is older than its anchor: a trail of {size:,} records, it held "
            f"{was_en}",
        )
    if anchor.trail_size == 0:
        return None
    try:
        first = next(iter(trail.records(start=0, indices=[0])), None)
        root = trail.root(anchor.trail_size).hex()
    except BetrokkenError:
        first, root = None, ""
    if first is None or first.leaf_hash.hex() != anchor.first_record or root != anchor.trail_root:
        return (
            f"de database van de node is een andere dan de verankerde ({was}): haar spoor begint "
            "of verloopt anders",
            f"the node's database is another than the anchored one ({was_en}): its trail starts "
            "or runs differently",
        )
    return None


def refusal(path: Path, why: tuple[str, str]) -> DataLost:
    return DataLost(
        f"{why[0]}. De node beantwoordt geen vragen: ze zou dan 'niet betrokken' zeggen voor "
        f"registraties die ze kwijt is (anker: {path}).\n"
        f"{why[1]}. The node does not answer: it would say 'not involved' for registrations it "
        f"lost (anchor: {path}).",
        hint=f"{NEXT_STEPS_NL} / {NEXT_STEPS_EN}",
    )


def reset_entry(organisation: str, actor: str, old: Anchor | None, now: dt.datetime) -> AuditEntry:
    """The trail record of a ``node reset``: what the anchor said before."""
    details = {"action": "reset"}
    if old is not None:
        details.update(
            anchored_trail_size=str(old.trail_size),
            anchored_active=str(old.active),
            anchored_at=old.written_at.isoformat(timespec="seconds"),
            anchored_first_record=old.first_record,
        )
    return AuditEntry(
        event=Event.REGISTRATION,
        at=now,
        organisation=organisation,
        user=actor,
        subjects=(),
        reason="reset",
        details=details,
    )
