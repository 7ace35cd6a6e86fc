"""Starting the coordinator from its configuration file."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from betrokken.config.load import load_coordinator
from betrokken.coordinator.fanout import GrpcNodeLink, NodeLink
from betrokken.coordinator.servicer import CoordinatorServicer
from betrokken.coordinator.store import AuditStore
from betrokken.identity.rpc import make_server
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


def start(config_path: Path | str) -> tuple[grpc.Server, str]:
    loaded = load_coordinator(config_path)
    network = loaded.network
    store = AuditStore(loaded.component.database)
    links: dict[str, NodeLink] = {
        org.id: GrpcNodeLink(org.node_address, loaded.tls)
        for org in network.nodes()
        if org.node_address
    }
    listen = loaded.component.listen or network.coordinator.address
    server = make_server(listen, loaded.tls, workers=32)
    pb_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(network, store, links), server)
    server.start()
    logging.getLogger("betrokken.coordinator").info(
        "coordinator for network '%s' listening on %s, %d node(s)",
        network.name,
        listen,
        len(links),
    )
    return server, listen
