"""The ``betrokken`` command's entry point: quiet gRPC for users, then the commands.

gRPC's core library writes its own lines (``E0000 ... Handshake failed``) straight to standard
error; on a user's terminal they are noise next to betrokken's own message, so for every command
but ``... serve`` ``GRPC_VERBOSITY`` is set to ``NONE`` before grpc is first imported. Services keep
gRPC's logs (and a service started from a quieted command, as the demo does, gets them back).
"""

from __future__ import annotations

import os
import sys

GRPC_VERBOSITY = "GRPC_VERBOSITY"
_QUIETED = "BETROKKEN_GRPC_QUIETED"  # set when we, not the user, chose GRPC_VERBOSITY


def quiet_grpc(argv: list[str], environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    serving = len(argv) >= 2 and argv[1] == "serve"
    if serving:
        if environ.pop(_QUIETED, None):
            environ.pop(GRPC_VERBOSITY, None)
    elif GRPC_VERBOSITY not in environ:
        environ[GRPC_VERBOSITY] = "NONE"
        environ[_QUIETED] = "1"


def main() -> None:
    quiet_grpc(sys.argv[1:])
    from betrokken.app.cli import run

    run()
