"""Starting the key service from its configuration file."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from betrokken.audit.keys import read_log_key
from betrokken.audit.log import AuditLog
from betrokken.config.load import load_keyservice
from betrokken.config.schema import Network
from betrokken.db import report_writable
from betrokken.health import Health, Probe, database_writable
from betrokken.identity.names import Identity, Role
from betrokken.identity.pins import reloading
from betrokken.identity.rpc import check_own_certificate, make_server
from betrokken.keyservice.keys import KeyRing, read_seed
from betrokken.keyservice.servicer import KeyServiceServicer
from betrokken.keyservice.store import QuotaStore
from betrokken.metrics import keyservice_metrics
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


def keys_loaded(ring: KeyRing, network: Network) -> Probe:
    """A probe: the key of every organisation in the network file is loaded."""

    def probe() -> str | None:
        missing = [o.id for o in network.organisations if o.id not in ring.keys]
        return f"the keys of {', '.join(missing)} are not loaded" if missing else None

    return probe


def start(config_path: Path | str) -> tuple[grpc.Server, str]:
    loaded = load_keyservice(config_path)
    network = loaded.network
    check_own_certificate(
        loaded.tls, Identity(Role.KEYSERVICE), network.keyservice.tls_name, network
    )
    seed_path = loaded.resolve(loaded.component.oprf_seed)
    ring = KeyRing.load(read_seed(seed_path), network, str(seed_path))
    store = QuotaStore(loaded.component.database)
    signer = read_log_key(loaded.resolve(loaded.component.log_key), network.keyservice.log_key)
    audit = AuditLog(store.engine, signer, signer.name)
    listen = loaded.component.listen or network.keyservice.address
    pins = reloading(loaded)  # only listed client certificates pass the handshake
    server = make_server(listen, loaded.tls, pins=pins)
    report_writable(store.engine, loaded.component.database, "key service")
    # Operations (docs/operator.md, 'Monitoring'): metrics of every call, the health service.
    metrics = keyservice_metrics(network, store.usage, audit.size)
    pb_grpc.add_KeyServiceServicer_to_server(
        metrics.instrument(KeyServiceServicer(network, ring, store, audit=audit, pins=pins)),
        server,
    )
    health = Health(
        server,
        "keyservice",
        [keys_loaded(ring, network), database_writable(store.engine)],
        loaded.component.health_interval_seconds,
        on_change=lambda serving: metrics.serving.set(int(serving)),
    )
    server.start()
    health.start()
    metrics.serve(loaded.component.metrics_listen)
    logging.getLogger("betrokken.keyservice").info(
        "key service for network '%s' listening on %s, keys of %d organisation(s)",
        network.name,
        listen,
        len(network.organisations),
    )
    return server, listen
