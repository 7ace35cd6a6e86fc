"""Run a ``betrokken`` service with every thread under cProfile (``python -m cProfile`` sees only
the main thread, where a gRPC server just waits): ``python bench/profiled.py OUT.prof ARGS...``.

Each thread's ``run`` gets its own profiler (timed by the thread's CPU time when
``BETROKKEN_PROFILE_CPU=1``: on a busy machine wall time is mostly waiting); at exit (services
stop cleanly on SIGTERM) they are merged into ``OUT.prof``. Standard library only; used by
``python -m bench.hotspots``.
"""

from __future__ import annotations

import atexit
import cProfile
import os
import pstats
import sys
import threading
import time

OUT = sys.argv[1]
PROFILES: list[cProfile.Profile] = []
_run = threading.Thread.run


CPU = os.environ.get("BETROKKEN_PROFILE_CPU") == "1"


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile(time.thread_time) if CPU else cProfile.Profile()
    PROFILES.append(profile)
    profile.enable()
    try:
        _run(self)
    finally:
        profile.disable()


def _dump() -> None:
    stats: pstats.Stats | None = None
    for profile in PROFILES:
        try:
            profile.create_stats()
        except Exception:  # noqa: S112 - a profile still running in another thread
            continue
        if not getattr(profile, "stats", None):
            continue
        if stats is None:
            stats = pstats.Stats(profile)
        else:
            stats.add(profile)
    if stats is not None:
        stats.dump_stats(OUT)


threading.Thread.run = _profiled_run  # type: ignore[method-assign]
atexit.register(_dump)
sys.argv = ["betrokken", *sys.argv[2:]]

from betrokken.app.launch import main  # noqa: E402

main()
