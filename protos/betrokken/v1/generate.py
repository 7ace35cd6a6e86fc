"""Regenerate (or, with ``--check``, compare) the committed gRPC code for betrokken.proto.

Run as ``python -m betrokken.v1.generate``. Needs the test extra (grpcio-tools).
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent  # protos/
GENERATED = ("betrokken_pb2.py", "betrokken_pb2.pyi", "betrokken_pb2_grpc.py")


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


def main(argv: list[str]) -> int:
    if "--check" in argv:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            stale = [
                name
                for name in GENERATED
                if not filecmp.cmp(Path(tmp, "betrokken", "v1", name), HERE / name, shallow=False)
            ]
        if stale:
            print("stale generated code: " + ", ".join(stale) + "; run `make protos`")
            return 1
        return 0
    generate(PROTO_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
