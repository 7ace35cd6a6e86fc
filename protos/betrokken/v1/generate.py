"""Regenerate (or, with ``--check``, compare) the committed gRPC code for betrokken.proto.

Run as ``python -m betrokken.v1.generate`` (``make protos``). Needs the test extra (grpcio-tools),
installed from the lock, so the committed code is what the locked generator writes.

``--check`` compares what matters, the code: the generator stamps its own version into the files
(``GRPC_GENERATED_VERSION``, the protobuf gencode version), and a newer grpcio-tools that writes
the same code with another stamp is not stale code. That the stamps are the locked generator's is
checked apart (tests/test_protos_fresh.py), against requirements/test.txt.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent  # protos/
GENERATED = ("betrokken_pb2.py", "betrokken_pb2.pyi", "betrokken_pb2_grpc.py")

_GRPC_STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '([^']*)'$", re.MULTILINE)
_PROTOBUF_COMMENT = re.compile(r"^# Protobuf Python Version: (\S+)$", re.MULTILINE)
_PROTOBUF_CHECK = re.compile(
    r"(_runtime_version\.Domain\.PUBLIC,\n)\s*(\d+),\n\s*(\d+),\n\s*(\d+),\n\s*'([^']*)',"
)


def stamps(directory: Path = HERE) -> dict[str, str]:
    """The generator versions stamped into the files in ``directory``: ``grpc`` and ``protobuf``."""
    grpc_code = (directory / "betrokken_pb2_grpc.py").read_text(encoding="utf-8")
    message_code = (directory / "betrokken_pb2.py").read_text(encoding="utf-8")
    found: dict[str, str] = {}
    if match := _GRPC_STAMP.search(grpc_code):
        found["grpc"] = match.group(1)
    if match := _PROTOBUF_COMMENT.search(message_code):
        found["protobuf"] = match.group(1)
    return found


def code(text: str) -> str:
    """``text`` without the generator's version stamps: the code itself."""
    text = _GRPC_STAMP.sub("GRPC_GENERATED_VERSION = '<generator>'", text)
    text = _PROTOBUF_COMMENT.sub("# Protobuf Python Version: <generator>", text)
    return _PROTOBUF_CHECK.sub(r"\1<generator>,", text)


def generate(out_dir: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc  # only needed by developers

    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_ROOT / "betrokken" / "v1" / "betrokken.proto"),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def stale_files() -> list[str]:
    """The committed files whose code differs from what the installed generator writes."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp, "betrokken", "v1")
        return [
            name
            for name in GENERATED
            if code((fresh / name).read_text(encoding="utf-8"))
            != code((HERE / name).read_text(encoding="utf-8"))
        ]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        if stale:
            print("stale generated code: " + ", ".join(stale) + "; run `make protos`")
            return 1
        return 0
    generate(PROTO_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
