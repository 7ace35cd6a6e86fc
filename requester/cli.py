"""``betrokken query``: the regisseur's question from the command line (the portal asks through
the same :class:`betrokken.requester.client.Requester`)."""

from __future__ import annotations

import csv
import getpass
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from betrokken.clikit import (
    as_error,
    check_printable,
    config_option,
    guard,
    importing,
    read_bsn,
)
from betrokken.crypto.bsn import mask, parse_bsn
from betrokken.errors import BadInput, BetrokkenError, InvalidBsn, Unavailable

if TYPE_CHECKING:  # imported when asking, not for --help
    from betrokken.requester.client import Person

EXIT_COMPLETE = 0
EXIT_PARTIAL = 3


def _read_list(path: Path, default_case: str | None, limit: int) -> list[Person]:
    from betrokken.requester.client import Person

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{path}: not UTF-8 text (byte {exc.start:,} is not); nothing was asked",
            hint="save the list as UTF-8 (Excel: 'CSV UTF-8') and ask again",
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "bsn" not in header:
        raise BadInput(f"{path}: the first line must be a header with a 'bsn' column (and 'case')")
    reader.fieldnames = header
    persons, problems = [], []
    for row in reader:
        value = (row.get("bsn") or "").strip()
        case = (row.get("case") or "").strip() or default_case
        try:
            bsn = parse_bsn(value)
        except InvalidBsn as exc:
            problems.append(f"line {reader.line_num}: {exc.message}")
            continue
        if not case:
            problems.append(f"line {reader.line_num}: {mask(value)} has no case (and no --case)")
            continue
        persons.append(Person(bsn, case))
    if problems:
        raise BadInput(
            f"{path}: {len(problems)} line(s) cannot be asked; nothing was asked\n  "
            + "\n  ".join(problems),
            hint="correct those lines and ask again",
        )
    if not persons:
        raise BadInput(f"{path}: no persons in the list")
    if len(persons) > limit:
        raise BadInput(
            f"{path}: {len(persons)} persons; the network allows at most {limit} per query",
            hint="split the list",
        )
    return persons


@click.command("query")
@config_option
@click.option(
    "--bsn",
    help="The person's BSN, or '-' to read it from standard input (pseudonymised here; never "
    "sent or stored). Prefer '-': a BSN on the command line lands in shell history.",
)
@click.option(
    "--file",
    "list_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A CSV list of persons (header: bsn,case) to ask at once.",
)
@click.option("--purpose", required=True, help="The purpose (doel) of the question.")
@click.option("--case", help="Your case reference (required for --bsn).")
@click.option("--user", default=None, help="The asking user (default: your account name).")
@click.option("--acted-for", default="", help="The user you act for, if any.")
@click.option("--role", default="regisseur", show_default=True, help="Your role.")
@click.option(
    "--on-behalf-of",
    "on_behalf_of",
    default=None,
    help="The partner the question is asked for (the aanmelder; default: your organisation).",
)
@click.option(
    "--gezin",
    is_flag=True,
    help="A list of persons asked together as one household or casus (one case for all).",
)
@click.option(
    "--watch-days",
    type=click.IntRange(0, 3660),
    default=0,
    help="Leave a watch at the partners that name themselves: if one registers the person later, "
    "within this many days, you are told (collect it with `betrokken collect`); at most the "
    "purpose's watch_days.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@guard
def query(
    config_path: Path,
    bsn: str | None,
    list_file: Path | None,
    purpose: str,
    case: str | None,
    user: str | None,
    acted_for: str,
    role: str,
    on_behalf_of: str | None,
    gezin: bool,
    watch_days: int,
    as_json: bool,
) -> None:
    """Ask whether other organisations are involved (betrokken) with a person.

    Exit codes: 0 complete answer, 3 partial answer (some organisation did not answer),
    4 refused by policy, 2 bad input, 5 configuration, 6 certificate refused,
    7 a service unreachable, 8 verification failed, 1 anything else.
    """
    try:
        _query(
            config_path,
            bsn,
            list_file,
            purpose,
            case,
            user,
            acted_for,
            role,
            as_json,
            on_behalf_of=on_behalf_of,
            gezin=gezin,
            watch_days=watch_days,
        )
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as caught:
        exc = as_error(caught)
        if as_json and not isinstance(exc, _AfterTheAnswer):  # errors as JSON, like answers
            click.echo(json.dumps(_error_json(exc), indent=2, ensure_ascii=True))
        raise exc from None


class _AfterTheAnswer(Unavailable):
    """A problem after the answer was shown (its JSON already carries it)."""


def _error_json(exc: BetrokkenError) -> dict[str, object]:
    return {
        "error": type(exc).__name__,
        "summary": exc.summary,
        "message": exc.message,
        "hint": exc.hint,
        "exit_code": exc.exit_code,
    }


def _query(
    config_path: Path,
    bsn: str | None,
    list_file: Path | None,
    purpose: str,
    case: str | None,
    user: str | None,
    acted_for: str,
    role: str,
    as_json: bool,
    *,
    on_behalf_of: str | None = None,
    gezin: bool = False,
    watch_days: int = 0,
) -> None:
    with importing():
        from betrokken import rules
        from betrokken.config.load import load_node
        from betrokken.requester.client import Person, Requester
        from betrokken.requester.view import render_text, to_json

    if bool(bsn) == bool(list_file):
        raise BadInput(
            "give either --bsn or --file", hint="--bsn for one person, --file for a list"
        )
    for option, value in (
        ("--purpose", purpose),
        ("--user", user),
        ("--role", role),
        ("--acted-for", acted_for),
        ("--case", case),
        ("--on-behalf-of", on_behalf_of),
    ):
        check_printable(option, value)
    loaded = load_node(config_path, light=True)
    network = loaded.network
    if bsn:
        person = parse_bsn(read_bsn(bsn))
        if not case or not case.strip():
            raise BadInput("a case reference is required", hint="pass --case YOUR-CASE-REF")
        persons = [Person(person, case.strip())]
    else:
        assert list_file is not None
        persons = _read_list(list_file, case, network.coordinator.max_batch)
    user = user or getpass.getuser()
    # The command line asks only as a service account the network file names; people ask
    # through the portal, which knows who they are.
    rules.check_service_account(network, loaded.component.organisation, user, role)
    with Requester.from_config(loaded, light=True) as requester:
        result = requester.ask(
            persons,
            purpose=purpose,
            user=user,
            acted_for=acted_for,
            role=role,
            on_behalf_of=on_behalf_of,
            gezin=gezin,
            watch_days=watch_days,
        )
    problem = (
        Unavailable(
            result.trail_problem,
            hint="the answer above stands; tell the organisation's administrator that its own "
            "database is not writable (see docs/operator.md, 'Recovery')",
        )
        if result.trail_problem
        else None
    )
    if as_json:
        shown = to_json(network, result)
        if problem is not None:  # one JSON document: the answer, with the problem in it
            shown["problem"] = _error_json(problem)
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(network, result))
    if problem is not None:  # the answer stands; then the problem, with its own exit code
        raise _AfterTheAnswer(problem.message, hint=problem.hint)
    sys.exit(EXIT_COMPLETE if result.complete else EXIT_PARTIAL)


@click.command("collect")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@guard
def collect(config_path: Path, as_json: bool) -> None:
    """Collect the late answers of deferred questions from the coordinator's mailbox.

    A defer partner's decision arrives at the end of its term, a signal when a partner registers
    a person asked about earlier; each is checked against the sender's pinned key and kept.

    Exit codes: 0 collected (or nothing waiting), 8 a message was refused (forged or altered: an
    alarm in the trail), 5 configuration, 6 certificate refused, 7 the coordinator unreachable.
    """
    from betrokken.config.load import load_node
    from betrokken.errors import VerificationError
    from betrokken.requester.late import collector_from_config, list_late

    loaded = load_node(config_path)
    collector = collector_from_config(loaded)
    try:
        done = collector.collect()
        answers = list_late(collector.engine)
    finally:
        collector.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "kept": done.kept,
                    "refused": done.refused,
                    "problems": list(done.problems),
                    "late_answers": [
                        {
                            "answer_id": a.answer_id,
                            "from": a.sender,
                            "kind": a.kind,
                            "purpose": a.purpose,
                            "answers": [{"case": c, **x.to_json()} for c, x in a.answers],
                        }
                        for a in answers
                    ],
                },
                indent=2,
                ensure_ascii=True,
            )
        )
    else:
        click.echo(f"{done.kept} late answer(s) collected, {done.refused} refused")
        for problem in done.problems:
            click.echo(f"  refused: {problem}")
        for late in answers:
            what = "now also involved" if late.signal else "decided"
            click.echo(f"{late.sender} {what} (question {late.answer_id}, {late.purpose}):")
            for case, answer in late.answers:
                if late.signal and not answer.outcome.involved:
                    continue
                contact = f"; contact: {answer.contact}" if answer.contact else ""
                click.echo(f"  case {case}: {answer.outcome.value}{contact}")
    if done.refused:
        raise VerificationError(
            f"{done.refused} late message(s) failed their check and were refused",
            hint="the trail holds an alarm for each; tell the DPO (the coordinator or another "
            "party may have altered them)",
        )
