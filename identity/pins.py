"""The network file's allow-list of certificate fingerprints (docs/adr/0016).

Per organisation, and for the coordinator and the key service, the network file may list the
SHA-256 fingerprints of the certificates that may speak for it. Revoking a certificate is removing
its line; an empty list accepts any certificate of the network CA with the right identity (for
development). Servers check the list on every call; a running server re-reads the network file
when it changes, so a revocation needs no restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from betrokken.config.load import Loaded
from betrokken.config.schema import Network
from betrokken.errors import BetrokkenError
from betrokken.identity.names import Identity, Role

log = logging.getLogger("betrokken.security")
RECHECK_SECONDS = 1.0


def allowed_in(network: Network, identity: Identity) -> frozenset[str]:
    """The fingerprints listed for ``identity`` (empty: any certificate of the CA)."""
    if identity.role is Role.COORDINATOR:
        return frozenset(network.coordinator.certificates)
    if identity.role is Role.KEYSERVICE:
        return frozenset(network.keyservice.certificates)
    org = network.organisation(identity.organisation_id or "")
    return frozenset(org.certificates) if org is not None else frozenset()


class Pins(Protocol):
    def allowed(self, identity: Identity) -> frozenset[str]: ...


class NetworkPins:
    """The allow-list of one loaded network file, as it was loaded."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def allowed(self, identity: Identity) -> frozenset[str]:
        return allowed_in(self.network, identity)


def reloading(loaded: Loaded[Any]) -> ReloadingPins:
    """The allow-list of a component's network file, re-read when that file changes."""
    return ReloadingPins(loaded.resolve(loaded.component.network), loaded.network)


class ReloadingPins:
    """The allow-list of a network file, re-read when the file changes (checked at most once a
    second). A changed file that does not validate is logged and the last good list kept."""

    def __init__(self, path: Path, network: Network) -> None:
        self.path = path
        self._network = network
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

    def allowed(self, identity: Identity) -> frozenset[str]:
        return allowed_in(self.current(), identity)
