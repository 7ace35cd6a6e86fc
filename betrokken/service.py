"""Running a gRPC service until it is told to stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import grpc


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def run_until_stopped(
    server: grpc.Server, name: str, on_stop: Callable[[], None] | None = None
) -> None:
    """Block until SIGINT/SIGTERM, then stop gracefully."""
    stopped = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        logging.getLogger("betrokken").info("%s stopping (signal %d)", name, signum)
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stopped.wait()
    server.stop(grace=2).wait()
    if on_stop:
        on_stop()
    logging.getLogger("betrokken").info("%s stopped", name)
