"""Two workers share `make test` (docs/adr/0031-two-test-workers.md): what keeps them apart (each
network's ports held by the process that took them) and what keeps tests together (a module's
own fixture made once, on one worker)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import pytest

from tests.conftest import PORT_BLOCK, network_ports, worker_group


def _taken_elsewhere(base: int) -> bool:
    """Whether another holder (here: another open file, as another worker's would be) can take
    the block at ``base``: False when the process that took it still holds it."""
    path = Path(tempfile.gettempdir()) / f"betrokken-test-ports-{base}.lock"
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_networks_ports_are_held_so_that_no_other_worker_or_run_takes_them() -> None:
    # The attacker's move: another worker asks for ports while this network's servers do not
    # listen yet (a check of free ports alone would hand it the same ones).
    first = network_ports(5)
    assert not _taken_elsewhere(first), "another worker could take the same block"
    second = network_ports(5)
    assert abs(second - first) >= PORT_BLOCK, "two networks of one process overlap"
    assert not _taken_elsewhere(second)


@pytest.fixture(scope="module")
def made_once_per_module() -> str:
    return "a module's own network, log or population"


def test_a_test_with_a_module_fixture_runs_with_the_rest_of_its_module(
    request: pytest.FixtureRequest, made_once_per_module: str
) -> None:
    assert worker_group(request.node) == "tests/test_workers.py"


def test_a_test_without_a_shared_fixture_runs_on_whichever_worker_is_free(
    request: pytest.FixtureRequest,
) -> None:
    assert worker_group(request.node) is None
