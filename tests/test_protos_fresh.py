"""The committed gRPC code matches protos/betrokken/v1/betrokken.proto."""

from betrokken.v1 import generate


def test_generated_code_is_fresh() -> None:
    assert generate.main(["--check"]) == 0, "run `make protos` and commit the result"
