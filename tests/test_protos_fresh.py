"""The committed gRPC code is what the locked generator writes from betrokken.proto."""

from __future__ import annotations

from importlib.metadata import version

from packaging.requirements import Requirement
from packaging.version import Version

from betrokken.v1 import generate
from tests.locks import project, versions


def test_generated_code_is_fresh() -> None:
    assert generate.stale_files() == [], "run `make protos` and commit the result"


def test_the_version_stamps_are_the_locked_generators() -> None:
    (locked,) = versions("test")["grpcio-tools"]
    assert generate.stamps()["grpc"] == locked, "run `make protos` with the locked grpcio-tools"


def test_the_installed_generator_is_the_locked_one() -> None:
    (locked,) = versions("test")["grpcio-tools"]
    assert version("grpcio-tools") == locked, "install from the lock: `make test`"


def _floor(requirement: Requirement) -> Version | None:
    bounds = [
        Version(spec.version)
        for spec in requirement.specifier
        if spec.operator in (">=", "==", "~=")
    ]
    return max(bounds, default=None)


def test_the_stated_ranges_admit_no_runtime_older_than_the_generated_code_needs() -> None:
    # The generated code refuses to import under an older grpcio or protobuf; pyproject.toml's
    # ranges are what a library user gets, so they must not promise less.
    stated = {
        Requirement(text).name.lower(): Requirement(text) for text in project()["dependencies"]
    }  # type: ignore[attr-defined]
    stamped = generate.stamps()
    for package, stamp in (("grpcio", stamped["grpc"]), ("protobuf", stamped["protobuf"])):
        floor = _floor(stated[package])
        assert floor is not None and floor >= Version(stamp), (
            f"pyproject.toml lets {package} be older than {stamp}, which the generated code needs"
        )
