"""The network file's allow-list of certificates (docs/adr/0016, docs/adr/0024 section 11).

Per organisation, and for the coordinator and the key service, the network file lists the
certificates that may speak for it (each certificate itself, PEM; older files name only SHA-256
fingerprints). Revoking a certificate is removing it; an empty list accepts any certificate of
the network CA with the right identity (for development).

Where every certificate of a peer is listed, that list is the only trust anchor of a channel to
it: a client accepts no other certificate inside the TLS handshake (``certificates``), and a
server whose every possible caller is listed accepts no other client certificate
(``client_roots``). Servers also check the list on every call (a connection made before a
revocation). A running component re-reads the network file when it changes, so a revocation
needs no restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from betrokken.config.load import Loaded
from betrokken.config.plain import entry_certificate, entry_fingerprint
from betrokken.errors import BetrokkenError
from betrokken.identity.names import Identity, Role

if TYPE_CHECKING:  # pydantic only where a file is validated (docs/adr/0045)
    from betrokken.config.schema import Network

log = logging.getLogger("betrokken.security")
RECHECK_SECONDS = 1.0


def _entries(network: Network, identity: Identity) -> list[str]:
    if identity.role is Role.COORDINATOR:
        return list(network.coordinator.certificates)
    if identity.role is Role.KEYSERVICE:
        return list(network.keyservice.certificates)
    org = network.organisation(identity.organisation_id or "")
    return list(org.certificates) if org is not None else []


def allowed_in(network: Network, identity: Identity) -> frozenset[str]:
    """The fingerprints listed for ``identity`` (empty: any certificate of the CA)."""
    return frozenset(entry_fingerprint(e) for e in _entries(network, identity))


def certificates_in(network: Network, identity: Identity) -> tuple[str, ...] | None:
    """The certificates (PEM) listed for ``identity`` — the trust anchors of a channel to it —
    or None when the list is empty or names a certificate by its fingerprint only."""
    entries = _entries(network, identity)
    pems = tuple(entry_certificate(e) or "" for e in entries)
    return pems if entries and all(pems) else None


def parties(network: Network) -> list[Identity]:
    """Every party of the network: each organisation, the coordinator, the key service."""
    return [
        *(Identity(Role.ORGANISATION, o.id) for o in network.organisations),
        Identity(Role.COORDINATOR),
        Identity(Role.KEYSERVICE),
    ]


def client_roots_in(network: Network) -> tuple[str, ...] | None:
    """What a server may accept as client certificates in the handshake: every listed
    certificate of every party, when every party's list is complete; None otherwise (then the
    network CA, and the list is checked per call only)."""
    roots: list[str] = []
    for party in parties(network):
        listed = certificates_in(network, party)
        if listed is None:
            return None
        roots.extend(listed)
    return tuple(sorted(set(roots)))


def unpinned(network: Network) -> list[str]:
    """The parties whose allow-list cannot be checked in the handshake (for warnings)."""
    return [p.uri for p in parties(network) if certificates_in(network, p) is None]


class Pins(Protocol):
    def allowed(self, identity: Identity) -> frozenset[str]: ...

    def certificates(self, identity: Identity) -> tuple[str, ...] | None: ...

    def client_roots(self) -> tuple[str, ...] | None: ...


class NoPins:
    """No allow-list: the network CA is a channel's trust anchor (a link or a watch built by
    hand, without a network file; tests)."""

    def allowed(self, identity: Identity) -> frozenset[str]:
        return frozenset()

    def certificates(self, identity: Identity) -> tuple[str, ...] | None:
        return None

    def client_roots(self) -> tuple[str, ...] | None:
        return None


NO_PINS = NoPins()


LISTS_KEPT = 4096  # identities whose lists one network file's memo keeps (more: starts over)


class _Lists:
    """What one loaded network file lists per identity, worked out once: a client asks for a
    peer's certificates on every call it makes, a server for the caller's fingerprints on every
    call it serves, and a loaded network file does not change (a changed file is a new one)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self._allowed: dict[Identity, frozenset[str]] = {}
        self._certificates: dict[Identity, tuple[str, ...] | None] = {}

    def allowed(self, identity: Identity) -> frozenset[str]:
        found = self._allowed.get(identity)
        if found is None:
            found = allowed_in(self.network, identity)
            if len(self._allowed) >= LISTS_KEPT:
                self._allowed = {}
            self._allowed[identity] = found
        return found

    def certificates(self, identity: Identity) -> tuple[str, ...] | None:
        try:
            return self._certificates[identity]
        except KeyError:
            pass
        found = certificates_in(self.network, identity)
        if len(self._certificates) >= LISTS_KEPT:
            self._certificates = {}
        self._certificates[identity] = found
        return found


class NetworkPins:
    """The allow-list of one loaded network file, as it was loaded."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self._lists = _Lists(network)

    def allowed(self, identity: Identity) -> frozenset[str]:
        return self._lists.allowed(identity)

    def certificates(self, identity: Identity) -> tuple[str, ...] | None:
        return self._lists.certificates(identity)

    def client_roots(self) -> tuple[str, ...] | None:
        return client_roots_in(self.network)


def reloading(loaded: Loaded[Any]) -> ReloadingPins:
    """The allow-list of a component's network file, re-read when that file changes."""
    return ReloadingPins(loaded.resolve(loaded.component.network), loaded.network)


class ReloadingPins:
    """The allow-list of a network file, re-read when the file changes (checked at most once a
    second). A changed file that does not validate is logged and the last good list kept."""

    def __init__(self, path: Path, network: Network) -> None:
        self.path = path
        self._network = network
        self._lists = _Lists(network)
        self._stamp = self._stat()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    def current(self) -> Network:
        now = time.monotonic()
        if now - self._checked < RECHECK_SECONDS:
            return self._network
        with self._lock:
            if now - self._checked < RECHECK_SECONDS:
                return self._network
            self._checked = now
            stamp = self._stat()
            if stamp is None or stamp == self._stamp:
                return self._network
            from betrokken.config.load import load_network

            try:
                network = load_network(self.path)
            except BetrokkenError as exc:
                log.error(
                    "the network file %s changed but cannot be used (%s); the certificate "
                    "allow-list stays as it was",
                    self.path,
                    exc.message.splitlines()[0],
                )
                self._stamp = stamp
                return self._network
            self._stamp = stamp
            self._network = network
            log.info("certificate allow-list re-read from %s", self.path)
            return network

    def _current_lists(self) -> _Lists:
        network = self.current()
        lists = self._lists
        if lists.network is not network:  # re-read: worked out again from the new file
            lists = self._lists = _Lists(network)
        return lists

    def allowed(self, identity: Identity) -> frozenset[str]:
        return self._current_lists().allowed(identity)

    def certificates(self, identity: Identity) -> tuple[str, ...] | None:
        return self._current_lists().certificates(identity)

    def client_roots(self) -> tuple[str, ...] | None:
        return client_roots_in(self.current())
