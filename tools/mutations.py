"""Remove one defence at a time and check that its test fails: ``python tools/mutations.py``.

Each mutation replaces one exact piece of code (the defence) with code that lets the attack
through, runs the test that plays that attacker, and puts the file back. A mutation the test
does not catch ("SURVIVED") means the test would not notice the defence gone. Run it on a clean
work tree (it refuses otherwise: it edits files in place and restores them with their own
content, also after Ctrl-C). Slow (real processes): not part of ``make test``; the closing note of
a change to a defence lists its results. ``--only NAME`` runs one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    defence: str  # the exact code that defends
    removed: str  # what stands there without the defence
    test: str  # the test that plays the attacker


MUTATIONS = (
    Mutation(
        "closed roles",
        "betrokken/rules.py",
        "    if role not in purpose.allowed_roles:\n        raise PurposeNotAllowed(",
        "    if False:\n        raise PurposeNotAllowed(",
        "tests/e2e/test_insiders.py::"
        "test_a_requester_signing_a_role_its_purpose_does_not_allow_is_refused_everywhere",
    ),
    Mutation(
        "k-anonymous domains",
        "betrokken/rules.py",
        "            if len(orgs) < 2:\n",
        "            if False:\n",
        "tests/test_rules.py::test_a_network_file_that_breaks_a_rule_is_refused_naming_the_rule",
    ),
    Mutation(
        "no query string on question pages",
        "portal/app.py",
        "        if request.url.query and is_question_page(request.url.path):\n",
        "        if False:\n",
        "tests/portal/test_security.py::"
        "test_a_bsn_in_the_address_of_a_question_page_is_refused_and_reaches_no_file",
    ),
    Mutation(
        "witnessed before answered (the cosignature quorum)",
        "audit/proofs.py",
        "    if len(found) < quorum:\n        missing = sorted(set(others) - set(found))\n",
        "    if False:\n        missing = sorted(set(others) - set(found))\n",
        "tests/e2e/test_split_view.py::"
        "test_p6_a_node_kept_on_a_forked_history_refuses_the_question_only_it_was_shown",
    ),
    Mutation(
        "a checkpoint's cosignatures taken from memory only for the exact same note",
        "crypto/cosignature.py",
        "        key = (hashlib.sha256(note.encode()).digest(), frozenset(cosigners.items()))\n",
        "        key = (note_body(note), frozenset(cosigners.items()))\n",
        "tests/e2e/test_insiders.py::"
        "test_a_forged_cosignature_over_a_checkpoint_the_node_already_verified_is_refused",
    ),
    Mutation(
        "the allow-list inside the client's handshake",
        "identity/rpc.py",
        '    roots = "".join(certificates).encode("ascii") if certificates else _read(tls.ca)\n',
        "    roots = _read(tls.ca)\n",
        "tests/e2e/test_handshake.py::test_p8_a_revoked_node_certificate_receives_no_byte_of_a_lookup",
    ),
    Mutation(
        "the allow-list inside the server's handshake",
        "identity/rpc.py",
        '        roots = "".join(self._roots).encode("ascii") if self._roots else '
        "_read(self.tls.ca)\n",
        "        roots = _read(self.tls.ca)\n",
        "tests/e2e/test_handshake.py::"
        "test_p8_a_revoked_client_certificate_is_refused_in_the_servers_handshake",
    ),
    Mutation(
        "the node checks the aanmelder against its own network file",
        "node/servicer.py",
        "                question.role,\n                question.on_behalf_of,\n",
        "                question.role,\n                question.requester,\n",
        "tests/e2e/test_insiders.py::"
        "test_a_question_for_an_aanmelder_the_network_file_does_not_list_is_refused_at_the_node",
    ),
    Mutation(
        "the node checks the case reference on a hit",
        "node/servicer.py",
        "            if opened is not None and not rules.case_matches(pattern, opened.case):\n",
        "            if False:\n",
        "tests/e2e/test_insiders.py::"
        "test_a_node_refuses_a_known_person_asked_under_a_case_reference_that_is_not_the_askers",
    ),
    Mutation(
        "a node gets only the records of its own questions (P3)",
        "coordinator/store.py",
        "        if node not in asked:\n",
        "        if False:\n",
        "tests/e2e/test_record_sampling.py::"
        "test_a_node_asking_for_the_record_of_a_question_it_was_not_asked_is_refused",
    ),
    Mutation(
        "a sampled record is compared with the leaf hash the node answered under",
        "node/witness.py",
        "    if leaf != kept.leaf_hash:\n",
        "    if False:\n",
        "tests/e2e/test_record_sampling.py::"
        "test_an_altered_record_in_the_coordinators_database_is_one_alarm_at_the_node_that_answered",
    ),
    Mutation(
        "one alarm per damaged record, not one per interval",
        "node/witness.py",
        "        if row.alarmed:\n            continue\n",
        "",
        "tests/e2e/test_record_sampling.py::"
        "test_an_altered_record_in_the_coordinators_database_is_one_alarm_at_the_node_that_answered",
    ),
    Mutation(
        "one clock alarm per episode",
        "node/clockwatch.py",
        "        if off and not was_off:\n",
        "        if off:\n",
        "tests/e2e/test_record_sampling.py::"
        "test_the_node_shows_the_coordinators_clock_and_alarms_once_when_it_is_off",
    ),
)


def run(mutation: Mutation) -> str:
    path = ROOT / mutation.file
    original = path.read_text()
    if original.count(mutation.defence) != 1:
        return "MISSING (the defence's code is not found once: update this table)"
    path.write_text(original.replace(mutation.defence, mutation.removed))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", mutation.test],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        path.write_text(original)
    if done.returncode == 1:
        return "caught (the test fails without the defence)"
    if done.returncode == 0:
        return "SURVIVED (the test passes without the defence)"
    return f"ERROR (pytest exit {done.returncode}): {done.stdout[-500:]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run only the mutation with this name")
    args = parser.parse_args()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if dirty:
        print("commit or stash your changes first: this edits files in place", file=sys.stderr)
        return 2
    survived = 0
    for mutation in MUTATIONS:
        if args.only and mutation.name != args.only:
            continue
        result = run(mutation)
        survived += not result.startswith("caught")
        print(f"{mutation.name}: {result}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
