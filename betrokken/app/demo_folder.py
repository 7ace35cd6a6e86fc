"""The demo's feed step: the gemeente's case system (GCOS) feeds its node through a drop folder,
with no person in between, and a question finds the person registered that way (docs/operator.md,
'Feeds').

The drop folder holds BSNs while the export lies there (as at a partner), so it is a temporary
folder outside the network's folder, removed after the step (P1); the report the watcher writes
holds none and is shown here.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from betrokken.app.cluster import betrokken_command
from betrokken.app.devnet import DevNetwork
from betrokken.crypto.bsn import Bsn, generate_bsn, mask

Out = Callable[[str], None]


def folder_step(
    out: Out, net: DevNetwork, org: str, asker: str, on_behalf_of: str, known: list[Bsn]
) -> bool:
    """Feed ``org``'s node through a drop folder; ask about the person fed. True when it worked."""
    out(f"\n== 15c. The case system (GCOS) of {org} feeds its node through a drop folder")
    rng = random.Random(2026_1207)
    fed = generate_bsn(rng)
    while fed in known:
        fed = generate_bsn(rng)
    folder = Path(tempfile.mkdtemp(prefix="betrokken-aanlevering-"))
    config = net.node_configs[org]
    original = config.read_text("utf-8")
    try:
        config.write_text(
            original + f'\n[[feeds]]\nname = "gcos"\ndrop_folder = "{folder / "gcos"}"\n'
            "quiet_after_minutes = 1560\n",
            encoding="utf-8",
        )
        export = folder / "gcos" / "gcos-export.csv"
        export.parent.mkdir()
        today = dt.datetime.now(dt.UTC).date()
        export.write_text(
            f"Zaaknummer;BSN;Startdatum\nGCOS-00001;{fed.digits};{today:%d-%m-%Y}\n",
            encoding="utf-8",
        )
        finished = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).timestamp()
        os.utime(export, (finished, finished))  # as a nightly export, finished a while ago
        out(f"   GCOS wrote {export.name} (1 case, {mask(fed.digits)}) into its drop folder")
        args = ["node", "watch", "--config", str(config), "--once"]
        out("$ betrokken " + " ".join(args))
        done = subprocess.run(betrokken_command(*args), capture_output=True, text=True, check=False)
        out("  " + done.stdout.strip().replace("\n", "\n  "))
        reports = sorted((folder / "gcos" / "verwerkt").glob("*.rapport.txt"))
        ok = done.returncode == 0 and not export.exists() and len(reports) == 1
        if reports:
            dutch = reports[0].read_text("utf-8").split("-" * 60)[0].strip()
            out("   the watcher's report (verwerkt/), Dutch part:")
            out("     " + dutch.replace("\n", "\n     "))
        out("\n== 15d. A question finds the person the case system registered by itself")
        query = ["query", "--config", str(net.node_configs[asker]), "--bsn", "-"]
        query += ["--purpose", "zvh-triage", "--case", "ZVH-2026-0160", "--user", "r.jansen"]
        query += ["--on-behalf-of", on_behalf_of]
        out(f"$ echo {mask(fed.digits)} | betrokken " + " ".join(query))
        asked = subprocess.run(
            betrokken_command(*query),
            input=fed.digits + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        out("  " + asked.stdout.strip().replace("\n", "\n  "))
        hits = [line for line in asked.stdout.splitlines() if "INVOLVED" in line]
        ok &= asked.returncode == 0 and len(hits) == 1
        out(
            "  [found through the drop folder; as expected]"
            if ok
            else "  [UNEXPECTED: the person the case system fed was not found]"
        )
        return ok
    finally:
        config.write_text(original, encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
