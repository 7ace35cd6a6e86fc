"""The tests on the run's network run on one worker, in order (docs/adr/0031)."""

from __future__ import annotations

import pytest

from tests.conftest import NETWORK_GROUP, WORKER, worker_group
from tests.e2e.conftest import Running


def test_a_test_on_the_runs_network_runs_in_the_networks_group(
    request: pytest.FixtureRequest, running: Running
) -> None:
    group = f"{NETWORK_GROUP}:tests/e2e"  # the portal's tests: network:tests/portal
    assert worker_group(request.node) == group
    assert [m.args for m in request.node.iter_markers("xdist_group")] == [(group,)]
    assert request.node.get_closest_marker("e2e") is not None
    if WORKER:  # pytest-xdist hands groups out by the node id's suffix
        assert request.node.nodeid.endswith(f"@{group}"), request.node.nodeid
