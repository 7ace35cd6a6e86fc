"""Running a whole network as real processes on loopback (for the demo and end-to-end tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from betrokken.app.devnet import DevNetwork
from betrokken.config.load import load_network
from betrokken.errors import Unavailable


def betrokken_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "betrokken", *(str(a) for a in args)]


# How long a process may take to start before the cluster gives up on it. Not the usual wait:
# each start ends as soon as the process is ready (its port answers; a portal, its login page),
# or at once when the process exits. A loaded machine took longer than 30 s for a portal.
STARTUP_SECONDS = float(os.environ.get("BETROKKEN_STARTUP_SECONDS", "180"))


def _listens(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ready(address: str) -> bool:
    """A portal is ready when it answers an HTTP request (any status: the login page)."""
    import http.client

    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", "/inloggen")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _wait_for_port(
    address: str,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float | None = None,
    ready: Callable[[str], bool] = _listens,
) -> None:
    timeout = STARTUP_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(f"process for {address} exited with {process.returncode}:\n{tail}")
        if ready(address):
            return
        time.sleep(0.1)
    raise Unavailable(
        f"{address} was not ready after {timeout:.0f} s (the process still runs); see {log}",
        hint="a loaded machine: BETROKKEN_STARTUP_SECONDS sets how long to wait",
    )


@dataclass
class Cluster:
    """The key service, the coordinator and every node of a development network."""

    net: DevNetwork
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.net.directory / "logs"

    def _spawn(self, name: str, command: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        self.log_dir.mkdir(exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                command,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.net.directory,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.processes[name] = process
        return process, log

    def _start(
        self,
        name: str,
        command: list[str],
        address: str,
        ready: Callable[[str], bool] = _listens,
    ) -> None:
        process, log = self._spawn(name, command)
        _wait_for_port(address, process, log, ready=ready)

    def start_process(self, name: str, command: list[str], address: str) -> None:
        """Start ``command`` as this cluster's process ``name`` (its log ``logs/NAME.log``) and
        wait until it listens on ``address``; stop it with :meth:`stop_process`."""
        self._start(name, command, address)

    def start(self) -> None:
        """Start the key service and every node at once, then the coordinator, and wait until each
        listens. The coordinator comes last because it reads the nodes' health when it starts: a
        node reports "not serving" until its first check has run, and the coordinator would skip
        it until its next look."""
        network = load_network(self.net.network_file)
        starting = [
            (
                "keyservice",
                betrokken_command("keyservice", "serve", "--config", self.net.keyservice_config),
                network.keyservice.address,
            ),
            *(
                (f"node-{org.id}", self._node_command(org.id), org.node_address or "")
                for org in network.nodes()
            ),
        ]
        try:
            spawned = [(self._spawn(name, command), address) for name, command, address in starting]
            for (process, log), address in spawned:
                _wait_for_port(address, process, log)
            self._start(
                "coordinator",
                betrokken_command("coordinator", "serve", "--config", self.net.coordinator_config),
                network.coordinator.address,
            )
        except BaseException:
            self.stop()  # none left running when one could not start
            raise

    def _node_command(self, org_id: str) -> list[str]:
        return betrokken_command("node", "serve", "--config", self.net.node_configs[org_id])

    def start_node(self, org_id: str) -> None:
        network = load_network(self.net.network_file)
        org = network.organisation(org_id)
        assert org is not None and org.node_address
        self._start(f"node-{org_id}", self._node_command(org_id), org.node_address)

    def start_portal(self, org_id: str, config: Path | None = None, name: str = "") -> str:
        """Start ``org_id``'s web portal (from its portal.toml, or ``config``); returns its
        address (http://127.0.0.1:PORT). Stop it with ``stop_process(name or 'portal-ORG')``."""
        from betrokken.config.load import load_portal

        config = config or self.net.portal_configs[org_id]
        listen = load_portal(config).portal.listen
        command = betrokken_command("portal", "serve", "--config", config)
        self._start(name or f"portal-{org_id}", command, listen, ready=_http_ready)
        return f"http://{listen}"

    def stop_process(self, name: str) -> int | None:
        process = self.processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop_node(self, org_id: str) -> int | None:
        return self.stop_process(f"node-{org_id}")

    def stop(self) -> dict[str, int | None]:
        return {name: self.stop_process(name) for name in list(self.processes)}

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
