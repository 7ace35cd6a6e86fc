"""``betrokken node``: the node's own commands (:mod:`betrokken.node.cli`) plus ``node watch``.

``node watch`` writes its reports in Dutch and English from the portal's one message catalogue
(ADR 0020), which sits above the node's floor; so the command is added to the node's group here,
where both may be imported (docs/adr/0036). Its work is imported only when it runs.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from betrokken.clikit import config_option, guard
from betrokken.node.cli import node

__all__ = ["node"]


@node.command("watch")
@config_option
@click.option("--once", is_flag=True, help="One round over the drop folders, then stop (cron).")
@click.option(
    "--interval",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds between rounds.",
)
@click.option(
    "--stable-seconds",
    type=click.FloatRange(0, 86_400),
    default=60.0,
    show_default=True,
    help="A file is read only when it has not changed for this long.",
)
@guard
def node_watch(config_path: Path, once: bool, interval: float, stable_seconds: float) -> None:
    """Import the feeding systems' full exports from their drop folders ([[feeds]] in node.toml)."""
    from betrokken.app.feedwatch import watch
    from betrokken.config.load import load_node
    from betrokken.errors import ConfigError
    from betrokken.service import configure_logging

    configure_logging()
    loaded = load_node(config_path)
    folders = [f for f in loaded.component.feeds if f.drop_folder is not None]
    if not folders:  # a unit started for nothing would look like a feed that works
        raise ConfigError(
            f"{config_path}: er is geen aanleverpunt ingesteld, dus niets om te bewaken / no drop "
            "folder is configured, so there is nothing to watch",
            hint="zet een [[feeds]]-blok met drop_folder in node.toml (docs/operator.md, "
            '"Feeds"), of zet deze dienst uit / add a [[feeds]] block with drop_folder to '
            "node.toml, or disable this service",
        )
    stop = threading.Event()
    if not once:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _s, _f: stop.set())
    handled = watch(loaded, once=once, interval=interval, stable_seconds=stable_seconds, stop=stop)
    if once:
        click.echo(f"{handled} file(s) handled")
