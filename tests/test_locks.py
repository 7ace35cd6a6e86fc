"""The hashed locks hold what pyproject.toml asks for, and nothing an upstream release can change.

`make test`, `make demo` and `.ci/run` install from requirements/*.txt with ``--require-hashes``
(docs/adr/0023); pyproject.toml keeps the ranges for people who install betrokken as a library.
These tests fail when the two disagree: a range changed without `make lock`, a dependency added
to pyproject.toml but not locked, or one removed but still locked.
"""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from tests.locks import build_requirements, read_lock, requirements, versions

# Each environment the Makefile makes: its lock and the extras it holds.
ENVIRONMENTS = {"runtime": (), "test": ("test",), "lint": ("test", "lint")}


@pytest.mark.parametrize(("lock", "extras"), ENVIRONMENTS.items())
def test_every_requirement_of_the_project_is_pinned_within_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    pinned = versions(lock)
    problems = []
    for requirement in requirements(*extras) + build_requirements():
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            problems.append(f"{name} is not in requirements/{lock}.txt")
            continue
        for version in pinned[name]:
            if not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{name}=={version} is outside pyproject.toml's {requirement}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


@pytest.mark.parametrize(("lock", "extras"), ENVIRONMENTS.items())
def test_nothing_is_locked_for_the_project_that_it_no_longer_asks_for(
    lock: str, extras: tuple[str, ...]
) -> None:
    asked = {canonicalize_name(r.name) for r in requirements(*extras)}
    direct = {
        pin.name for pin in read_lock(lock) if any(via.startswith("betrokken (") for via in pin.via)
    }
    assert direct == asked, f"run `make lock`: requirements/{lock}.txt differs from pyproject.toml"


@pytest.mark.parametrize("lock", [*ENVIRONMENTS, "psi", "lock-tool"])
def test_every_pin_carries_hashes(lock: str) -> None:
    pins = read_lock(lock)
    assert pins, f"requirements/{lock}.txt pins nothing"
    assert [pin.name for pin in pins if pin.hashes == 0] == []


def test_the_environments_agree_on_every_version_they_share() -> None:
    runtime, test, lint = versions("runtime"), versions("test"), versions("lint")
    assert {n: v for n, v in test.items() if n in runtime} == runtime
    assert {n: v for n, v in lint.items() if n in test} == test


def test_the_bench_baseline_keeps_its_own_protobuf() -> None:
    # openmined-psi needs protobuf < 7, betrokken 7: two environments (docs/adr/0022).
    assert "openmined-psi" in versions("psi")
