"""An organisation's own trail and witness state, opened from its node configuration.

The trail (the organisation's audit log) and what it witnessed of the coordinator's log live in
the organisation's own database, next to its node's registrations. The asking side (CLI, portal)
opens just these, never the node's registrations.
"""

from __future__ import annotations

from betrokken.audit.keys import read_log_key
from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.witness import WitnessBase, WitnessStore
from betrokken.config.load import Loaded
from betrokken.config.schema import NodeConfig
from betrokken.db import make_engine


def open_trail(loaded: Loaded[NodeConfig]) -> tuple[AuditLog, WitnessStore]:
    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None  # load_node checked it
    signer = read_log_key(loaded.resolve(loaded.component.log_key), org.log_key)
    engine = make_engine(loaded.component.database, LogBase.metadata, component="node")
    WitnessBase.metadata.create_all(engine)
    trail = AuditLog(engine, signer, signer.name)
    return trail, WitnessStore(engine, trail, org.id)
