"""Draft a new schema revision: ``python tools/new_revision.py COMPONENT "message"``.

Builds a temporary SQLite database at the component's current head, compares it with the tables
the code declares (Alembic autogenerate) and writes the draft into migrations/COMPONENT/versions.
See migrations/README.md: read and correct the draft before committing it.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import MetaData, create_engine

from betrokken import migrations


def declared(component: str) -> MetaData:
    from betrokken.audit.log import LogBase
    from betrokken.audit.witness import WitnessBase
    from betrokken.coordinator.anchors import AnchorBase
    from betrokken.coordinator.counts import CountBase
    from betrokken.coordinator.mailbox import MailboxBase
    from betrokken.keyservice.store import Base as KeyServiceBase
    from betrokken.node.deferrals import DeferralBase
    from betrokken.node.feeds import FeedBase
    from betrokken.node.store import Base as NodeBase
    from betrokken.portal.register import RegisterBase
    from betrokken.portal.users import PortalBase
    from betrokken.requester.late import LateBase

    sources = {
        "node": (
            NodeBase.metadata,
            LogBase.metadata,
            WitnessBase.metadata,
            PortalBase.metadata,
            RegisterBase.metadata,
            FeedBase.metadata,
            DeferralBase.metadata,
            LateBase.metadata,
        ),
        "keyservice": (KeyServiceBase.metadata, LogBase.metadata),
        "coordinator": (
            LogBase.metadata,
            AnchorBase.metadata,
            MailboxBase.metadata,
            CountBase.metadata,
        ),
    }[component]
    combined = MetaData()
    for metadata in sources:
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in migrations.COMPONENTS:
        print(__doc__)
        return 2
    component, message = argv[1], argv[2]
    number = len(migrations.revisions(component)) + 1
    revision = f"{component}_{number:04d}"
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40]
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'head.db'}")
        migrations.ensure_current(engine, component, "draft")
        with engine.begin() as conn:
            config = migrations._config(component, conn, target_metadata=declared(component))
            config.set_main_option("file_template", f"{revision}_{slug}")
            command.revision(config, message=message, autogenerate=True, rev_id=revision)
    print(f"wrote migrations/{component}/versions/{revision}_{slug}.py: read and correct it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
