"""Starting a node from its configuration file, with automatic expiry of ended registrations."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from betrokken.config.load import load_node
from betrokken.errors import ConfigError
from betrokken.identity.rpc import make_server
from betrokken.node.servicer import NodeServicer
from betrokken.node.store import NodeStore
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.node")


@dataclass
class RunningNode:
    server: grpc.Server
    listen: str
    stop_expiry: threading.Event

    def stop(self) -> None:
        self.stop_expiry.set()
        self.server.stop(grace=1).wait()


def _expiry_loop(store: NodeStore, interval: float, stop: threading.Event) -> None:
    while True:
        try:
            removed = store.expire(dt.datetime.now(dt.UTC).date())
            if removed:
                log.info("expired %d ended registration(s)", removed)
        except Exception:
            log.exception("expiry failed; will try again")
        if stop.wait(interval):
            return


def start(config_path: Path | str) -> RunningNode:
    loaded = load_node(config_path)
    network = loaded.network
    org = network.organisation(loaded.component.organisation)
    assert org is not None  # checked by load_node
    listen = loaded.component.listen or org.node_address
    if not listen:
        raise ConfigError(
            f"{loaded.path}: organisation '{org.id}' has no node_address in the network file",
            hint="set node_address for it, or 'listen' in this file",
        )
    store = NodeStore(loaded.component.database)
    server = make_server(listen, loaded.tls)
    pb_grpc.add_NodeServicer_to_server(NodeServicer(network, org, store), server)
    server.start()
    stop = threading.Event()
    threading.Thread(
        target=_expiry_loop,
        args=(store, loaded.component.expiry_interval_seconds, stop),
        daemon=True,
        name="expiry",
    ).start()
    log.info("node of '%s' listening on %s", org.id, listen)
    return RunningNode(server, listen, stop)
