#!/usr/bin/env python3
"""An example client of betrokken's registration API, for a case system's supplier to copy.

Python 3.11+ standard library only. It gets an OAuth 2.0 access token with the system's client
credentials, sends changes in bulk calls of at most ``--chunk`` changes over HTTPS, and retries
a call that did not get a final answer (connection lost, 409 in progress, 503) with the SAME
idempotency key, so a retry never applies a change twice. The keys are made from the file's
content and the chunk's number: running the same file again after a crash (of this script or of
the node) resumes it, and chunks already applied only return their first answer again.

    python3 feed_client.py --url https://node.example:8470 --ca ca.crt \\
        --client-id gcos --secret-file gcos.secret changes.csv

``changes.csv`` has a header line and the columns ``operation`` (register, confirm, end,
withdraw) and ``bsn``, and optionally ``since``, ``until`` (YYYY-MM-DD), ``reference``,
``contact``, ``advice``. The BSN only ever goes in a request body: never in a URL or this
script's output. See docs/integration.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

RETRY_STATUSES = (409, 429, 502, 503, 504)
OPTIONAL = ("since", "until", "reference", "contact", "advice")


class FeedError(Exception):
    """A call the node refused as a whole (a problem document, RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('title_en') or problem.get('title')}")
        self.status = status
        self.problem = problem


class FeedClient:
    def __init__(
        self,
        url: str,
        client_id: str,
        secret: str,
        ca: str | None = None,
        *,
        attempts: int = 8,
        timeout: float = 120.0,
    ) -> None:
        if urllib.parse.urlsplit(url).scheme != "https":
            raise ValueError(f"the node's API is reached over https://, not {url[:40]}")
        self.url = url.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self.context = ssl.create_default_context(cafile=ca) if ca else None
        self.attempts = attempts
        self.timeout = timeout
        self._token: str | None = None
        self._token_until = 0.0

    def _open(self, request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(  # noqa: S310 - https only (checked in __init__)
                request, timeout=self.timeout, context=self.context
            ) as got:
                return got.status, json.loads(got.read())
        except urllib.error.HTTPError as refused:
            body = refused.read()
            try:
                return refused.code, json.loads(body)
            except ValueError:
                return refused.code, {"title_en": body[:200].decode(errors="replace")}

    def token(self) -> str:
        if self._token and time.monotonic() < self._token_until:
            return self._token
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.secret,
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - https only (checked in __init__)
            f"{self.url}/oauth/token",
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        status, answer = self._open(request)
        if status != 200:
            raise FeedError(status, answer)
        self._token = str(answer["access_token"])
        self._token_until = time.monotonic() + int(answer["expires_in"]) - 60
        return self._token

    def call(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        """POST ``body`` to ``path`` with idempotency key ``key``, retried until a final answer."""
        data = json.dumps(body).encode()
        wait = 0.5
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(  # noqa: S310 - https only (checked in __init__)
                f"{self.url}{path}",
                data=data,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.token()}",
                    "Idempotency-Key": key,
                },
                method="POST",
            )
            try:
                status, answer = self._open(request)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as lost:
                if attempt == self.attempts:
                    raise
                print(f"call {key}: no answer ({lost}); retrying", file=sys.stderr)
            else:
                if status == 200:
                    return answer
                if status == 401:  # the node restarted: a new token, the same key
                    self._token = None
                elif status not in RETRY_STATUSES or attempt == self.attempts:
                    raise FeedError(status, answer)
            time.sleep(wait)
            wait = min(wait * 2, 30.0)
        raise AssertionError("unreachable")

    def bulk(self, changes: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
        return self.call("/v1/registrations/bulk", {"changes": list(changes)}, key)


def read_changes(path: Path) -> list[dict[str, Any]]:
    changes = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            change: dict[str, Any] = {"operation": row["operation"].strip(), "bsn": row["bsn"]}
            for name in OPTIONAL:
                if (row.get(name) or "").strip():
                    change[name] = row[name].strip()
            changes.append(change)
    return changes


def chunks(
    changes: Sequence[dict[str, Any]], size: int, prefix: str
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The calls to make: each chunk with a key made from the whole content and its number."""
    digest = hashlib.sha256(json.dumps(list(changes), sort_keys=True).encode()).hexdigest()[:24]
    for number, start in enumerate(range(0, len(changes), size)):
        yield f"{prefix}-{digest}-{number:06d}", list(changes[start : start + size])


def send(
    client: FeedClient, changes: Sequence[dict[str, Any]], size: int, prefix: str
) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for key, chunk in chunks(changes, size, prefix):
        answer = client.bulk(chunk, key)
        outcomes.update(answer["counts"])
        for result in answer["results"]:
            if result["outcome"] == "refused":
                problem = result["problem"]
                reason = problem.get("reason_en") or problem.get("title_en")
                print(f"{key} change {result['index']}: refused ({reason})", file=sys.stderr)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("changes", type=Path, help="CSV file of changes (see above)")
    parser.add_argument("--url", required=True, help="the node's registration API, https://...")
    parser.add_argument("--ca", help="the CA certificate the node's certificate is signed by")
    parser.add_argument("--client-id", required=True, help="the system's name in node.toml")
    parser.add_argument("--secret-file", required=True, type=Path, help="file with the secret")
    parser.add_argument("--chunk", type=int, default=1000, help="changes per call (default 1000)")
    parser.add_argument("--prefix", default="feed", help="start of every idempotency key")
    args = parser.parse_args(argv)
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    client = FeedClient(args.url, args.client_id, secret, args.ca)
    changes = read_changes(args.changes)
    try:
        outcomes = send(client, changes, args.chunk, args.prefix)
    except FeedError as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 1
    print(", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
