"""The P1 scans' search (tests/harness.py, ``bsns_written``) finds every place a BSN is written,
exactly where a search per BSN and encoding finds one."""

from __future__ import annotations

import random

from tests.harness import bsns_written


def _each_search(data: bytes, bsns: set[str]) -> list[tuple[int, str, str]]:
    found = []
    for bsn in bsns:
        for encoding in ("ascii", "utf-16-le"):
            needle = bsn.encode(encoding)
            at = data.find(needle)
            while at >= 0:
                found.append((at, bsn, encoding))
                at = data.find(needle, at + 1)
    return sorted(found)


def test_a_bsn_in_numbers_text_or_binary_is_found_wherever_a_search_per_bsn_finds_it() -> None:
    rng = random.Random(31)
    bsns = {f"{rng.randrange(10**8, 10**9):09d}" for _ in range(40)} | {"012345678"}
    for _ in range(120):
        parts = []
        for _ in range(rng.randrange(1, 12)):
            bsn = rng.choice(sorted(bsns))
            parts.append(
                rng.choice(
                    [
                        bsn.encode(),  # plain
                        f"{rng.randrange(1000)}{bsn}{rng.randrange(1000)}".encode(),  # in a number
                        bsn.encode("utf-16-le"),  # as a browser keeps it
                        ("7" + bsn).encode("utf-16-le"),
                        bsn[:8].encode(),  # a near miss
                        bytes(rng.randrange(256) for _ in range(rng.randrange(30))),  # binary
                        str(rng.randrange(10**12)).encode(),  # digits that are no BSN
                    ]
                )
            )
        data = b"".join(parts)
        assert sorted(bsns_written(data, bsns)) == _each_search(data, bsns), data
    assert bsns_written(b"x" + "012345678".encode("utf-16-le"), bsns) == [
        (1, "012345678", "utf-16-le")
    ]
