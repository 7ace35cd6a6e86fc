"""Wire contract, version 1: generated gRPC/protobuf code for ``betrokken.proto``.

The generated modules are committed; ``make protos`` regenerates them and the test suite
checks that they match the ``.proto`` file (see docs/adr/0002-wire-contract.md).
"""
