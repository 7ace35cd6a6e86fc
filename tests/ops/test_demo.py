"""The demo as a newcomer runs it on a shared machine: a second network made while the first
still starts gets other ports, and a SIGTERM stops every service the demo started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from betrokken.app.devnet import find_ports

_HOLDER = """
import sys
from betrokken.app.devnet import find_ports
print(find_ports(19, None)[0], flush=True)
sys.stdin.read()  # holds the range until the test closes its input
"""


@pytest.mark.e2e
def test_a_second_network_made_while_the_first_still_starts_gets_other_ports() -> None:
    """Nothing listens on the first network's ports until its services start, so a free-port
    check alone hands the same range to a second demo; the range's lock does not."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        first = int(holder.stdout.readline())
        second = find_ports(19, None)
        assert not set(range(first, first + 19)) & set(second)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def _using(folder: Path) -> list[int]:
    """The processes whose command line names ``folder`` (every service and portal of a demo
    there does: their configuration files are in it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            try:
                if str(folder).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # a zombie of ours no longer serves; /proc tells
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.e2e
def test_a_sigterm_to_a_demo_that_keeps_running_stops_every_service_it_started(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "betrokken", "demo", "--dir", str(tmp_path / "net")]
    demo = subprocess.Popen(
        [*command, "--per-node", "5", "--only-start"],  # the same services, without the walk
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # no Ctrl-C from the test's terminal reaches it
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 600
        for line in demo.stdout:
            lines.append(line)
            if "keeps running" in line or time.monotonic() > deadline:
                break
        output = "".join(lines)
        assert "keeps running" in output, output[-3000:]
        started = len(re.findall(r"\bpid (\d+)", output))
        assert started >= 7, output[:2000]
        before = _using(tmp_path)
        assert len(before) >= 2 and demo.pid in before
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=120)
        output += rest
        assert "Stopped every service" in output, output[-2000:]
        gone = time.monotonic() + 30
        while _using(tmp_path) and time.monotonic() < gone:
            time.sleep(0.2)
        assert _using(tmp_path) == []
    finally:  # whatever happened, nothing of this demo outlives the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=30)
