"""Running a gRPC service until it is told to stop, and how services log."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import grpc

from betrokken.errors import escape_text

MAX_MESSAGE_CHARS = 4000  # one log line; a longer message is cut and says so


class EscapingFormatter(logging.Formatter):
    """Every message on one line: control characters and newlines in the message and in every
    argument are escaped (a newline in a purpose cannot forge a WARNING line), a message longer
    than :data:`MAX_MESSAGE_CHARS` is cut, and a traceback's lines are each marked with ``  | ``
    so they cannot pass for log lines of their own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = escape_text(record.message)
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + f"... (cut; {len(message):,} characters)"
        shown = logging.makeLogRecord(record.__dict__)  # other handlers see the record unchanged
        shown.message = message
        return self._style.format(shown)

    def formatException(self, ei: object) -> str:
        text = super().formatException(ei)  # type: ignore[arg-type]
        return "\n".join("  | " + escape_text(line) for line in text.splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("  | " + escape_text(line) for line in stack_info.splitlines())


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(LOG_FORMAT, DATE_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("betrokken.store").setLevel(logging.NOTSET)  # a service logs store failures


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
