"""Starting the coordinator from its configuration file."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path

import grpc

from betrokken.audit.keys import read_log_key
from betrokken.audit.retention import prune_expired
from betrokken.config.load import load_coordinator
from betrokken.coordinator.fanout import GrpcNodeLink, GuardedLink, NodeLink
from betrokken.coordinator.mailbox import MailboxServicer, prune_mailbox
from betrokken.coordinator.servicer import CoordinatorServicer
from betrokken.coordinator.store import AuditStore
from betrokken.db import report_writable
from betrokken.health import Health, PeerWatch, database_writable
from betrokken.identity.names import Identity, Role, organisation_uri
from betrokken.identity.pins import reloading
from betrokken.identity.rpc import check_own_certificate, make_server
from betrokken.metrics import coordinator_metrics
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


def _prune_loop(store: AuditStore, years: int, interval: float) -> None:
    log = logging.getLogger("betrokken.coordinator")
    while True:
        try:
            result = prune_expired(store.log, years, dt.datetime.now(dt.UTC), "retention-schedule")
            if result.count:
                log.info("retention: %s", result.describe())
            dropped = prune_mailbox(store, dt.datetime.now(dt.UTC))
            if dropped:
                log.info("mailbox: %d message(s) nobody collected in time deleted", dropped)
        except Exception:
            log.exception("retention: pruning failed; will try again")
        time.sleep(interval)


def start(config_path: Path | str) -> tuple[grpc.Server, str]:
    loaded = load_coordinator(config_path)
    network = loaded.network
    check_own_certificate(
        loaded.tls, Identity(Role.COORDINATOR), network.coordinator.tls_name, network
    )
    signer = read_log_key(loaded.resolve(loaded.component.log_key), network.coordinator.log_key)
    store = AuditStore(loaded.component.database, signer, signer.name)
    # Operations (docs/operator.md, 'Monitoring'): the nodes' health, read in the background (a
    # node that reports NOT_SERVING is skipped), and metrics of every question and lookup.
    interval = loaded.component.health_interval_seconds
    # The network file's allow-list, re-read when it changes: only listed certificates pass the
    # handshake, to the nodes (the fan-out, their health) and from the callers (ADR 0024, 11).
    pins = reloading(loaded)
    peers = {o.id: (o.node_address, o.server_name) for o in network.nodes() if o.node_address}
    watch = PeerWatch(peers, loaded.tls, interval, pins=pins)
    metrics, observe = coordinator_metrics(network, store.log.size, watch.status)
    links: dict[str, NodeLink] = {
        org.id: GuardedLink(
            GrpcNodeLink(
                org.node_address,
                loaded.tls,
                org.server_name,
                organisation_uri(org.id),
                pins=pins,
            ),
            org.id,
            watch.not_serving,
            observe,
        )
        for org in network.nodes()
        if org.node_address
    }
    listen = loaded.component.listen or network.coordinator.address
    server = make_server(listen, loaded.tls, workers=32, pins=pins)
    report_writable(store.engine, loaded.component.database, "coordinator")
    servicer = CoordinatorServicer(network, store, links, pins=pins)
    pb_grpc.add_CoordinatorServicer_to_server(metrics.instrument(servicer), server)
    # The mailbox of late answers (docs/adr/0037): sealed, kept for the asker, on the same port.
    pb_grpc.add_MailboxServicer_to_server(MailboxServicer(network, store, pins=pins), server)
    health = Health(
        server,
        "coordinator",
        [database_writable(store.engine)],
        interval,
        on_change=lambda serving: metrics.serving.set(int(serving)),
    )
    server.start()
    health.start()
    watch.start()
    metrics.serve(loaded.component.metrics_listen)
    threading.Thread(
        target=_prune_loop,
        args=(store, network.retention.audit_years, loaded.component.prune_interval_seconds),
        daemon=True,
        name="retention",
    ).start()
    logging.getLogger("betrokken.coordinator").info(
        "coordinator for network '%s' listening on %s, %d node(s)",
        network.name,
        listen,
        len(links),
    )
    return server, listen
