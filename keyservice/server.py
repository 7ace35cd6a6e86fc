"""Starting the key service from its configuration file."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from betrokken.audit.keys import read_log_key
from betrokken.audit.log import AuditLog
from betrokken.config.load import load_keyservice
from betrokken.identity.rpc import make_server
from betrokken.keyservice.keyfile import read_key
from betrokken.keyservice.servicer import KeyServiceServicer
from betrokken.keyservice.store import QuotaStore
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


def start(config_path: Path | str) -> tuple[grpc.Server, str]:
    loaded = load_keyservice(config_path)
    network = loaded.network
    keypair = read_key(loaded.resolve(loaded.component.oprf_key), network.keyservice.public_key)
    store = QuotaStore(loaded.component.database)
    signer = read_log_key(loaded.resolve(loaded.component.log_key), network.keyservice.log_key)
    audit = AuditLog(store.engine, signer, signer.name)
    listen = loaded.component.listen or network.keyservice.address
    server = make_server(listen, loaded.tls)
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(network, keypair, store, audit=audit), server
    )
    server.start()
    logging.getLogger("betrokken.keyservice").info(
        "key service for network '%s' listening on %s, key id %s",
        network.name,
        listen,
        network.keyservice.key_id,
    )
    return server, listen
