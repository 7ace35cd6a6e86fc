"""Test tools that act as the parties of a development network with their own key files.

:class:`NetKeys` reads a network's keys from its folder the way each party holds them: the key
service's seed (to compute the pseudonyms a node stores, as ground truth), each organisation's
question key and envelope key, the coordinator's log key and TLS files. With them a test can act as
a requester (:meth:`NetKeys.prepare`) or as an insider — a coordinator that forges or replays a
lookup, a node that keeps what it receives.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from betrokken.app.devnet import DevNetwork
from betrokken.config.load import load_network
from betrokken.config.schema import Network, TlsFiles
from betrokken.crypto import oprf
from betrokken.crypto.envelope import EnvelopeKey
from betrokken.crypto.note import NoteKey
from betrokken.crypto.oprf import derive_organisation_key
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.identity.keyfiles import read_envelope_key, read_note_key, read_seed
from betrokken.requester.client import Prepared, prepare_question


def listed(pem: bytes | str) -> str:
    """A certificate's entry in a network file's allow-list, as `network init` writes it."""
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    return f'"""\n{text.strip()}\n""",\n'


@dataclass
class NetKeys:
    net: DevNetwork
    network: Network = field(init=False)

    def __post_init__(self) -> None:
        self.network = load_network(self.net.network_file)

    @cached_property
    def seed(self) -> bytes:
        return read_seed(self.net.directory / "keyservice" / "oprf.seed")

    def secret(self, org: str) -> bytes:
        return derive_organisation_key(self.seed, org).secret

    def pseudonym(self, org: str, digits: str) -> Pseudonym:
        organisation = self.network.organisation(org)
        assert organisation is not None
        value = oprf.evaluate(self.secret(org), digits.encode())
        return Pseudonym(value, organisation.pseudonym_key_id)

    def every_pseudonym(self, digits: str) -> dict[str, bytes]:
        """The person's pseudonym under every organisation's key."""
        return {o.id: self.pseudonym(o.id, digits).value for o in self.network.organisations}

    def node_dir(self, org: str):  # type: ignore[no-untyped-def]
        return self.net.node_configs[org].parent

    def question_key(self, org: str) -> NoteKey:
        organisation = self.network.organisation(org)
        assert organisation is not None
        return read_note_key(
            self.node_dir(org) / "question.key", organisation.question_key, "question key"
        )

    def envelope_key(self, org: str) -> EnvelopeKey:
        organisation = self.network.organisation(org)
        assert organisation is not None
        return read_envelope_key(self.node_dir(org) / "envelope.key", organisation.envelope_key)

    def node_log_key(self, org: str) -> NoteKey:
        """An organisation's trail key (its node signs its trail, node tags and cosignatures)."""
        organisation = self.network.organisation(org)
        assert organisation is not None
        return read_note_key(self.node_dir(org) / "log.key", organisation.log_key, "log key")

    def log_key(self) -> NoteKey:
        return read_note_key(
            self.net.directory / "coordinator" / "log.key",
            self.network.coordinator.log_key,
            "log signing key",
        )

    def tls(self, who: str) -> TlsFiles:
        """TLS files of an organisation, of 'coordinator' or of 'keyservice'."""
        base = self.node_dir(who) if who in self.net.node_configs else self.net.directory / who
        return TlsFiles(
            certificate=str(base / f"{who}.crt"),
            private_key=str(base / f"{who}.key"),
            ca=str(self.net.directory / "ca" / "ca.crt"),
        )

    def prepare(
        self,
        requester: str,
        purpose: str,
        persons: Sequence[tuple[str, str]],
        *,
        user: str = "tester",
        role: str = "regisseur",
        signer: NoteKey | None = None,
        **kwargs: object,
    ) -> Prepared:
        """A signed question with its envelopes, made as ``requester`` would (without the key
        service: the pseudonyms come from the seed this test can read)."""
        org = self.network.organisation(requester)
        assert org is not None
        orgs = [o.id for o in self.network.organisations]
        pseudonyms = {o: [self.pseudonym(o, digits) for digits, _ in persons] for o in orgs}
        return prepare_question(
            self.network,
            org,
            signer or self.question_key(requester),
            pseudonyms,
            [case for _, case in persons],
            purpose=purpose,
            user=user,
            role=role,
            **kwargs,  # type: ignore[arg-type]
        )


def trail_written(node_db: Path, timeout: float = 10.0) -> None:
    """Wait until a running node's trail writer has turned every answered question into trail
    records (node/outbox.py: within a second of the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(node_db) as conn:
            (waiting,) = conn.execute(
                "select count(*) from answered_questions where outbox is not null"
            ).fetchone()
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{node_db}: {waiting} answered question(s) not in the trail")
        time.sleep(0.05)


_DIGIT_RUN = re.compile(rb"[0-9]{9,}")
_DIGIT_RUN_UTF16 = re.compile(rb"(?:[0-9]\x00){9,}")


def bsns_written(data: bytes, bsns: set[str]) -> list[tuple[int, str, str]]:
    """Every place in ``data`` where one of ``bsns`` is written, as ASCII or as UTF-16-LE text:
    (offset, BSN, encoding).

    Every such place lies in a run of at least nine digits, so each run is read once and each of
    its nine-digit windows looked up, instead of searching the whole of ``data`` once per BSN and
    encoding (the P1 scans read every file of a network and a browser profile for hundreds of
    BSNs); what is found is the same."""
    found = []
    for run in _DIGIT_RUN.finditer(data):
        digits = run.group().decode("ascii")
        for i in range(len(digits) - 8):
            if digits[i : i + 9] in bsns:
                found.append((run.start() + i, digits[i : i + 9], "ascii"))
    for run in _DIGIT_RUN_UTF16.finditer(data):
        digits = run.group()[::2].decode("ascii")
        for i in range(len(digits) - 8):
            if digits[i : i + 9] in bsns:
                found.append((run.start() + 2 * i, digits[i : i + 9], "utf-16-le"))
    return found
