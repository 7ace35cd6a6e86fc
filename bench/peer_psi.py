"""The peer baseline: openmined-psi doing one batch pairwise against each node's set.

Runs in its own virtual environment (``.venv-psi``, made by ``make bench``): openmined-psi needs
protobuf < 7, betrokken's generated gRPC code protobuf 7 (docs/adr/0022). Reads its parameters as
JSON on standard input and writes the timings as JSON on standard output. Standard library and
openmined-psi only: it imports nothing of betrokken.
"""

from __future__ import annotations

import json
import random
import sys
import time

import private_set_intersection.python as psi


def main() -> None:
    params = json.load(sys.stdin)
    client_items: list[str] = params["client"]
    nodes: int = params["nodes"]
    per_node: int = params["per_node"]
    runs: int = params["runs"]
    rng = random.Random(7)
    sets = []
    for node in range(nodes):
        own = [item for k, item in enumerate(client_items) if (k + node) % 3 == 0]
        filler = [f"{rng.randrange(10**8, 10**9)}" for _ in range(per_node - len(own))]
        sets.append(own + filler)
    fpr = 1e-9
    servers = [psi.server.CreateWithNewKey(True) for _ in range(nodes)]
    with_setup: list[float] = []
    reused: list[float] = []
    found = 0
    for _ in range(runs):
        start = time.perf_counter()
        setups = []
        for server, items in zip(servers, sets, strict=True):
            setup = server.CreateSetupMessage(fpr, len(client_items), items, psi.DataStructure.GCS)
            setups.append(setup)
            client = psi.client.CreateWithNewKey(True)
            request = client.CreateRequest(client_items)
            response = server.ProcessRequest(request)
            found += len(client.GetIntersection(setup, response))
        with_setup.append(time.perf_counter() - start)
        start = time.perf_counter()
        for server, setup in zip(servers, setups, strict=True):
            client = psi.client.CreateWithNewKey(True)
            request = client.CreateRequest(client_items)
            response = server.ProcessRequest(request)
            found += len(client.GetIntersection(setup, response))
        reused.append(time.perf_counter() - start)
    json.dump({"with_setup_s": with_setup, "reused_s": reused, "found": found}, sys.stdout)


if __name__ == "__main__":
    main()
