"""``betrokken demo``: a six-organisation network on loopback, filled and asked.

Every service is a real process with mutual TLS. The case-system exports (which do hold BSNs, as
a partner's own system does) are written to a separate temporary folder and deleted right after
the import; the network folder itself never holds a BSN (P1).
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from betrokken.app.cluster import Cluster, betrokken_command
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.config.load import load_network
from betrokken.crypto.bsn import Bsn, generate_bsn, mask

ZVH = "zvh-kennemerland"
POLITIE = "politie-nh"
RECLASSERING = "reclassering"
GEMEENTE = "gemeente-haarlem"
GGZ = "ggz-kennemerland"
VEILIG_THUIS = "veilig-thuis-kennemerland"  # the second zorg member: a domain answer hides who
ORGS = (ZVH, POLITIE, RECLASSERING, GEMEENTE, GGZ, VEILIG_THUIS)

Out = Callable[[str], None]

# The command line's user name of a script (a service account of the network file) that has no
# portal account: the DPO's report flags questions asked under it.
SERVICE_USER = "koppeling"
# The demo's term for the GGZ's professionals to decide a ZSM question, in minutes; the network
# file `network init` writes gives 8 hours. The demo cannot wait a shift out.
DEMO_TERM_MINUTES = 2
ZSM_CASE = "ZSM-NH-77812"
PORTAL_CASE = "ZVH-2026-0160"


def shorten_defer_term(network_file: Path, minutes: float = DEMO_TERM_MINUTES) -> None:
    """Give zsm-context's defer partner ``minutes`` to decide instead of the file's 8 hours."""
    text = network_file.read_text()
    if "defer_hours = 8\n" not in text:
        raise RuntimeError("the development network's zsm-context has no defer_hours = 8")
    network_file.write_text(text.replace("defer_hours = 8\n", f"defer_hours = {minutes / 60!r}\n"))


@dataclass
class GroundTruth:
    """Who is registered where (kept in memory only)."""

    registrations: dict[str, list[Bsn]] = field(default_factory=dict)

    def where(self, bsn: Bsn) -> set[str]:
        return {org for org, people in self.registrations.items() if bsn in people}


def synthetic_population(
    rng: random.Random, orgs: tuple[str, ...], per_node: int
) -> tuple[GroundTruth, dict[str, Bsn]]:
    """Random valid BSNs per organisation, plus a few named persons for the story."""
    seen: set[str] = set()

    def fresh() -> Bsn:
        while True:
            bsn = generate_bsn(rng)
            if bsn.digits not in seen:
                seen.add(bsn.digits)
                return bsn

    named = {"several": fresh(), "nowhere": fresh(), "one": fresh()}
    truth = GroundTruth({org: [fresh() for _ in range(per_node)] for org in orgs})
    named["zorg"] = fresh()  # drawn last: the others stay what they were for a given seed
    for org in (POLITIE, RECLASSERING, GEMEENTE, GGZ):
        if org in truth.registrations:
            truth.registrations[org].append(named["several"])
    if GEMEENTE in truth.registrations:
        truth.registrations[GEMEENTE].append(named["one"])
    if GGZ in truth.registrations:
        truth.registrations[GGZ].append(named["zorg"])
    return truth, named


def persons_to_type(truth: GroundTruth, named: dict[str, Bsn]) -> list[str]:
    """The lines that give a newcomer numbers to type into a portal: synthetic BSNs (valid by the
    eleven-test, generated for this demo), each with where it is registered. On the screen only;
    the network's files never hold them (P1)."""
    lines = [
        "Test-BSN's om in een portaal te typen (synthetisch, door deze demo gemaakt)",
        "Synthetic test BSNs to type into a portal (made by this demo):",
    ]
    for key in ("several", "one", "zorg", "nowhere"):
        if key not in named:
            continue
        where = sorted(truth.where(named[key]))
        if not where:
            said = "nergens geregistreerd / registered nowhere"
        else:
            said = "geregistreerd bij / registered at " + ", ".join(where)
        lines.append(f"   {named[key].digits}  {said}")
    lines.append(
        "   (wat een portaal toont, volgt het beleid van elke organisatie voor het doel /"
        " what a portal shows follows each organisation's policy for the purpose)"
    )
    return lines


def write_export(path: Path, people: list[Bsn], rng: random.Random | None = None) -> None:
    """A case-system export: BSN, the start of involvement (up to ~1.5 years ago), a reference."""
    rng = rng or random.Random(len(people))
    today = dt.datetime.now(dt.UTC).date()
    lines = ["bsn,since,reference"]
    lines += [
        f"{bsn.digits},{today - dt.timedelta(days=rng.randrange(0, 540))},CASE-{index:05d}"
        for index, bsn in enumerate(people, start=1)
    ]
    lines.append("12345678X,CASE-BAD-1")  # a line a case system might produce by mistake
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Seen:
    """Reads the coordinator's own log to say what it saw of each question."""

    net: DevNetwork

    def line(self, output: str) -> str:
        from betrokken.audit.access import open_log
        from betrokken.coordinator.seen import describe

        answer_id = next(
            (ln.split()[2] for ln in output.splitlines() if ln.startswith("Answer id: ")), ""
        )
        if not answer_id:
            return "nothing: the question was stopped before it was sent"
        opened = open_log(self.net.coordinator_config)
        return describe(opened.log, opened.network, answer_id)


def _signal_step(
    out: Out, zvh: str, politie: str, truth: GroundTruth, named: dict[str, Bsn], seen: Seen
) -> bool:
    """The VIR's core act without its index: a watch left with a question; the partner that
    registers the person later tells the earlier asker, sealed, through the coordinator."""
    out(
        "\n== 4. A later registration tells the earlier asker: the ZVH asks about someone known "
        "nowhere and leaves a watch; the politie registers the person later, and the ZVH is told"
    )
    known = {b.digits for regs in truth.registrations.values() for b in regs}
    known |= {b.digits for b in named.values()}
    rng = random.Random(77)
    later = next(b for b in iter(lambda: generate_bsn(rng), None) if b.digits not in known)
    args = ["query", "--config", zvh, "--bsn", "-", "--purpose", "zvh-triage"]
    args += ["--case", "ZVH-2026-0199", "--user", "r.jansen", "--on-behalf-of", POLITIE]
    ok = _run(out, [*args, "--watch-days", "30"], 0, "complete answer", later.digits, seen) == 0
    register = ["node", "register", "--config", politie, "--bsn", "-"]
    ok &= _run(out, [*register, "--reference", "PNH-2026-0199"], 0, "registered", later.digits) == 0
    deadline = time.monotonic() + 60
    while True:  # the politie's node matches its watches every few seconds
        done = subprocess.run(
            betrokken_command("collect", "--config", zvh),
            capture_output=True,
            text=True,
            check=False,
        )
        if "now also involved" in done.stdout or time.monotonic() > deadline:
            break
        time.sleep(2)
    out(f"\n$ betrokken collect --config {zvh}")
    out("  " + done.stdout.rstrip().replace("\n", "\n  "))
    if "now also involved" not in done.stdout:
        out("  [no signal arrived; UNEXPECTED]")
        return False
    out("  [the ZVH is told 'now also involved: politie' for its own case; as expected]")
    return ok


def _run(
    out: Out,
    args: list[str],
    expect: int,
    what: str,
    bsn: str | None = None,
    seen: Seen | None = None,
) -> int:
    """Run a command as a user would; a BSN goes in on standard input (``--bsn -``), never in
    the command line, and is shown masked."""
    shown = "betrokken " + " ".join(args)
    if bsn is not None:
        shown = f"echo {mask(bsn)} | {shown}"
    out(f"\n$ {shown}")
    result = subprocess.run(
        betrokken_command(*args),
        input=(bsn + "\n") if bsn is not None else None,
        capture_output=True,
        text=True,
        check=False,
    )
    text = (result.stdout + result.stderr).rstrip()
    out("  " + text.replace("\n", "\n  "))
    if result.returncode == expect:
        out(f"  [exit code {result.returncode}: {what}; as expected]")
    else:  # never the expected code's meaning beside another code
        out(
            f"  [exit code {result.returncode} (docs/regisseur.md, 'Exit codes'); UNEXPECTED: "
            f"wanted {expect}, {what}]"
        )
    if seen is not None:
        out(f"  [what the coordinator saw: {seen.line(result.stdout)}]")
    return result.returncode


def _audit_steps(
    out: Out, net: DevNetwork, directory: Path, zvh: str, politie: str, several: Bsn
) -> bool:
    """The DPO's side: witnesses, verification, an access request and the report."""
    ok = True
    coordinator = str(net.coordinator_config)
    out("\n== 16. The nodes witness the coordinator's signed audit log")
    for config in (politie, zvh):
        ok &= _run(out, ["node", "witness", "--config", config, "--once"], 0, "consistent") == 0
    witnessed = directory / "witnessed-politie.txt"
    notes = subprocess.run(
        betrokken_command("node", "witnessed", "--config", politie),
        capture_output=True,
        text=True,
        check=False,
    )
    witnessed.write_text(notes.stdout)
    out("\n== 17. The DPO verifies the whole log, including what the politie node witnessed")
    ok &= (
        _run(
            out,
            [
                "audit",
                "verify",
                "--config",
                coordinator,
                "--witnessed",
                str(witnessed),
                "--user",
                "fg.zvh",
            ],
            0,
            "log verified",
        )
        == 0
    )
    out("\n== 18. A citizen asks who looked him up: the coordinator's records (audit subject)")
    letter = directory / "access-request.html"
    ok &= (
        _run(
            out,
            [
                "audit",
                "subject",
                "--config",
                coordinator,
                "--bsn",
                "-",
                "--via",
                zvh,
                "--out",
                str(letter),
                "--user",
                "fg.zvh",
            ],
            0,
            "records listed",
            bsn=several.digits,
        )
        == 0
    )
    out(
        "   (the FG's letter in the portal also asks every partner's FG whether its involvement may"
        " be told, and waits for their answers: fg.politie decides on /dpo/beslissen, ADR 0039)"
    )
    report = directory / "audit-report.html"
    out("\n== 19. The DPO's report of the coordinator's log")
    ok &= (
        _run(
            out,
            ["audit", "report", "--config", coordinator, "--out", str(report), "--user", "fg.zvh"],
            0,
            "report written",
        )
        == 0
    )
    out(f"   open {report} in a browser; the access request is in {letter}")
    return ok


def _fishing_steps(out: Out, directory: Path, zvh: str, several: Bsn) -> bool:
    """Fishing the ZVH's DPO must find in the ZVH's own trail (the coordinator cannot see who
    was asked about): one person under three case references, one case reference for five
    persons, and a user name nobody logs in to the portal with (a service account)."""
    ok = True
    out(
        "\n== 7. Fishing: one person under three case references, one case for five persons, "
        f"asked at the command line as '{SERVICE_USER}' (no portal account)"
    )

    def question(bsn: Bsn, case: str) -> bool:
        args = ["query", "--config", zvh, "--bsn", "-", "--purpose", "zvh-triage"]
        # a service account of the network file: typed at the command line, no portal account
        args += ["--case", case, "--user", SERVICE_USER, "--on-behalf-of", POLITIE]
        return _run(out, args, 0, "complete answer", bsn=bsn.digits) == 0

    for case in ("ZVH-2026-0901", "ZVH-2026-0902", "ZVH-2026-0903"):
        ok &= question(several, case)
    rng = random.Random(2026_0999)
    for person in (generate_bsn(rng) for _ in range(5)):
        ok &= question(person, "ZVH-2026-0999")
    report = directory / "audit-report-zvh.html"
    out("\n== 7b. The ZVH's DPO reads the report of the ZVH's own trail: three fishing patterns")
    command = ["audit", "report", "--config", zvh, "--out", str(report), "--user", "fg.zvh"]
    ok &= _run(out, command, 0, "report written") == 0
    page = report.read_text() if report.exists() else ""
    wanted = ("person-many-cases", "case-many-persons", "unknown-user")
    found = [kind for kind in wanted if f'data-kind="{kind}"' in page]
    out(f"   flagged: {', '.join(found) or 'nothing'} (open {report})")
    flagged = found == list(wanted)
    out(f"   [the three fishing patterns flagged; {'as expected' if flagged else 'UNEXPECTED'}]")
    return ok and flagged


def _nothing_before_the_term(out: Out, politie: str) -> bool:
    """A decision to share leaves the GGZ only at the term's end: when a message leaves would
    otherwise tell the coordinator that the person is known there."""
    done = subprocess.run(
        betrokken_command("collect", "--config", politie),
        capture_output=True,
        text=True,
        check=False,
    )
    out(f"\n$ betrokken collect --config {politie}")
    out("  " + done.stdout.rstrip().replace("\n", "\n  "))
    early = ZSM_CASE in done.stdout
    out(
        "  [nothing from the GGZ before the term ends; "
        + ("UNEXPECTED]" if early or done.returncode != 0 else "as expected]")
    )
    return not early and done.returncode == 0


def _term_ends_step(out: Out, politie: str, term_ends: float) -> bool:
    """At the term's end the GGZ's node delivers its decision, sealed, through the coordinator's
    mailbox; the politie collects the disclosure."""
    out(
        "\n== 9. The GGZ's term ends: the politie receives the professional's decision "
        f"(step 3; {max(0, round(term_ends - time.monotonic()))} s of the term left)"
    )
    deadline = term_ends + 120  # the node sends within seconds of the term's end
    while True:
        done = subprocess.run(
            betrokken_command("collect", "--config", politie),
            capture_output=True,
            text=True,
            check=False,
        )
        arrived = f"{GGZ} decided" in done.stdout and ZSM_CASE in done.stdout
        if arrived or time.monotonic() > deadline:
            break
        time.sleep(min(5.0, max(1.0, term_ends - time.monotonic())))
    out(f"\n$ betrokken collect --config {politie}")
    out("  " + done.stdout.rstrip().replace("\n", "\n  "))
    shared = arrived and f"case {ZSM_CASE}: involved" in done.stdout
    out(
        f"  [the GGZ shares for case {ZSM_CASE}, with its contact point; "
        + ("as expected]" if shared else "UNEXPECTED]")
    )
    return shared


def _network_check_step(out: Out, net: DevNetwork, directory: Path) -> bool:
    """Lawful by default: a copy of the network file in which the GGZ, bound by professional
    secrecy, would name itself for triage is refused by ``network check``."""
    out(
        "\n== 8. Lawful by default: a copy of the network file with the GGZ (beroepsgeheim) on "
        "'organisation' for zvh-triage is refused"
    )
    policy = f'organisation = "{GGZ}"\npurpose = "zvh-triage"\nlevel = '
    text = net.network_file.read_text()
    copy = directory / "network-ggz-organisation.toml"
    copy.write_text(text.replace(policy + '"domain"', policy + '"organisation"'))
    changed = copy.read_text() != text
    out(f'   {copy.name}: [[policies]] {GGZ} / zvh-triage: level = "organisation"')
    out(f"\n$ betrokken network check {copy}")
    done = subprocess.run(
        betrokken_command("network", "check", str(copy)),
        capture_output=True,
        text=True,
        check=False,
    )
    out("  " + done.stderr.rstrip().replace("\n", "\n  "))
    named = "een organisatie met beroepsgeheim" in done.stderr and GGZ in done.stderr
    ok = changed and done.returncode == 9 and named
    out(
        f"  [exit code {done.returncode}: refused, naming the rule in Dutch; "
        + ("as expected]" if ok else "UNEXPECTED: wanted 9 and the beroepsgeheim rule]")
    )
    copy.unlink(missing_ok=True)
    return ok


def run_demo(
    directory: Path | None,
    *,
    per_node: int = 2000,
    base_port: int | None = None,
    out: Out,
    keep_running: bool = False,
    only_start: bool = False,
    wait: Callable[[], None] = lambda: None,
) -> bool:
    """Run the whole demo; True when every step behaved as expected. With ``only_start`` the
    network, its registrations and the portals are started and kept running (with
    ``keep_running``), without the walk through the steps."""
    directory = directory or Path(tempfile.mkdtemp(prefix="betrokken-demo-"))
    out(f"== Building a development network of {len(ORGS)} organisations in {directory}")
    net: DevNetwork = init_network(
        directory,
        ORGS,
        base_port=base_port,
        name="demo-kennemerland",
        service_users=("r.jansen", "zsm.officier", SERVICE_USER),
        acts_for_others=(ZVH,),  # the ZVH asks for the partner that brought the case in
    )
    rng = random.Random(20261123)
    truth, named = synthetic_population(rng, ORGS, per_node)
    from betrokken.app.demo_feed import enable_feed, feed_step

    feed = enable_feed(net, GEMEENTE)
    shorten_defer_term(net.network_file)
    ok = True
    cluster = Cluster(net)
    try:
        out(
            f"== Starting the key service, {len(ORGS)} nodes and the coordinator "
            "(mutual TLS on loopback)"
        )
        cluster.start()
        for name, process in cluster.processes.items():
            out(f"   {name:<26} pid {process.pid}")
        out(f"== Importing {per_node} synthetic registrations per node (valid, generated BSNs)")
        exports = Path(tempfile.mkdtemp(prefix="betrokken-exports-"))
        try:
            for org in ORGS:
                export = exports / f"{org}.csv"
                write_export(export, truth.registrations[org])
                config = net.node_configs[org]
                args = ["node", "import", "--config", str(config), str(export), "--quiet"]
                result = subprocess.run(
                    betrokken_command(*args), capture_output=True, text=True, check=False
                )
                out(f"   {org}: " + result.stdout.strip().replace("\n", "\n   "))
                ok &= result.returncode == 2  # the one planted bad line is reported
        finally:
            shutil.rmtree(exports)
        out("   (the case-system exports, which held BSNs, are deleted again)")

        zvh = str(net.node_configs[ZVH])
        politie = str(net.node_configs[POLITIE])
        several, nowhere, one = named["several"], named["nowhere"], named["one"]
        seen = Seen(net)

        def ask(config: str, bsn: str, purpose: str, case: str, user: str, expect: int) -> bool:
            args = ["query", "--config", config, "--bsn", "-", "--purpose", purpose]
            args += ["--case", case, "--user", user]
            if config == zvh:  # the ZVH has no basis of its own: it asks for the aanmelder
                args += ["--on-behalf-of", POLITIE]
            what = {0: "complete answer", 2: "bad input", 3: "partial answer", 4: "refused"}
            return _run(out, args, expect, what[expect], bsn=bsn, seen=seen) == expect

        from betrokken.app import demo_after as after
        from betrokken.app import demo_portal as portals

        addresses, accounts = portals.start_portals(out, cluster)
        regisseur = portals.account(accounts, ZVH, "regisseur")
        police = portals.account(accounts, POLITIE, "regisseur")
        professional = portals.account(accounts, GGZ, "regisseur")
        dpo = portals.account(accounts, ZVH, "dpo")
        network = load_network(net.network_file)
        if not only_start:  # the walk through every step
            out("\n   First a case from the question to the follow-up, in the order it goes:")
            out("\n== 1. A question on behalf of a partner: the ZVH asks for the gemeente (portal)")
            out(f"   ground truth: registered at {', '.join(sorted(truth.where(several)))}")
            ok &= portals.portal_question_step(out, addresses, accounts, several, PORTAL_CASE)
            out(
                "\n== 2. The found partner's notice: the politie see who asked, why, "
                "and how to reach"
            )
            ok &= after.notice_step(out, addresses[POLITIE], police, PORTAL_CASE)
            out(
                "\n== 3. A defer request decided by a GGZ professional: ZSM asks about the same "
                "person; the GGZ answers 'pending', its professional decides to share"
            )
            out(
                f"   (in this demo the term is {DEMO_TERM_MINUTES} minutes; the network file's ZSM "
                "term is 8 hours. The next steps run while it passes.)"
            )
            ok &= ask(politie, several.digits, "zsm-context", ZSM_CASE, police.name, 0)
            term_ends = time.monotonic() + DEMO_TERM_MINUTES * 60
            ok &= after.decide_step(out, addresses[GGZ], professional, ZSM_CASE, "toestemming")
            ok &= _nothing_before_the_term(out, politie)
            ok &= _signal_step(out, zvh, politie, truth, named, seen)
            out("\n== 5. A follow-up recorded: the ZVH's regisseur notes contact with the politie")
            politie_name = network.organisation(POLITIE)
            ok &= after.follow_up_step(
                out,
                addresses[ZVH],
                regisseur,
                politie_name.name if politie_name else "",
                PORTAL_CASE,
            )
            out(
                "\n== 6. The letter for that person: the ZVH's FG answers an access request "
                "(portal)"
            )
            ok &= after.letter_step(out, addresses[ZVH], dpo, several.digits)
            ok &= _fishing_steps(out, directory, zvh, several)
            ok &= _network_check_step(out, net, directory)
            ok &= _term_ends_step(out, politie, term_ends)

            out("\n   Then the rest of what the network does:")
            out(
                "\n== 10. A person known at several organisations (ZVH triage, for the "
                "politie; CLI)"
            )
            ok &= ask(zvh, several.digits, "zvh-triage", "ZVH-2026-0142", "r.jansen", 0)
            out("\n== 11. A person known nowhere")
            ok &= ask(zvh, nowhere.digits, "zvh-triage", "ZVH-2026-0143", "r.jansen", 0)
            out(
                f"\n== 12. The node of {RECLASSERING} is stopped: the answer is partial, "
                "never a 'no'"
            )
            cluster.stop_node(RECLASSERING)
            ok &= ask(zvh, several.digits, "zvh-triage", "ZVH-2026-0142", "r.jansen", 3)
            cluster.start_node(RECLASSERING)
            out("\n== 13. A purpose the ZVH may not ask (zsm-context is for politie only)")
            ok &= ask(zvh, one.digits, "zsm-context", "ZVH-2026-0144", "r.jansen", 4)
            out("\n== 14. An invalid BSN (typing error)")
            ok &= ask(zvh, "123456789", "zvh-triage", "ZVH-2026-0145", "r.jansen", 2)
            out("\n== 15. A list of persons at once (the morning list)")
            lists = Path(tempfile.mkdtemp(prefix="betrokken-list-"))
            try:
                morning = lists / "morning.csv"
                morning.write_text(
                    "bsn,case\n"
                    f"{several.digits},ZVH-2026-0150\n{nowhere.digits},ZVH-2026-0151\n"
                    f"{one.digits},ZVH-2026-0152\n"
                )
                args = ["query", "--config", zvh, "--file", str(morning)]
                args += [
                    "--purpose",
                    "zvh-triage",
                    "--user",
                    "r.jansen",
                    "--on-behalf-of",
                    GEMEENTE,
                ]
                ok &= _run(out, args, 0, "complete answer", seen=seen) == 0
            finally:
                shutil.rmtree(lists)
            out(f"\n== 15b. The {GEMEENTE} wijkteam system registers a person through the API")
            registered = {b for people in truth.registrations.values() for b in people}
            fed = next(b for b in iter(lambda: generate_bsn(rng), None) if b not in registered)
            ok &= feed_step(out, feed, fed)
            ok &= ask(zvh, fed.digits, "zvh-triage", "ZVH-2026-0153", "r.jansen", 0)
            from betrokken.app.demo_folder import folder_step

            known = [p for people in truth.registrations.values() for p in people]
            ok &= folder_step(out, net, GEMEENTE, ZVH, GEMEENTE, known)
            ok &= _audit_steps(out, net, directory, zvh, politie, several)
            share = after.simulated_month(out, network, ZVH, random.Random(20261207))
            ok &= share is not None
        else:
            out(
                f"\n   Started without the steps (--only-start). A GGZ professional's term for a "
                f"ZSM question is {DEMO_TERM_MINUTES} minutes here (8 hours in the network file)."
            )
        for line in portals.portal_lines(addresses, accounts) + persons_to_type(truth, named):
            out(line)
        if keep_running:
            out("\nEvery service and portal keeps running; press Ctrl-C to stop them.")
            wait()
        else:
            out("\n(`betrokken demo --keep-running` keeps the portals open for a browser.)")
    finally:
        codes = cluster.stop()
        out("\n== Stopped every service: " + ", ".join(f"{n} ({c})" for n, c in codes.items()))
    out(f"\nThe network's files are in {directory}:")
    out(f"   network file     {net.network_file}")
    out(f"   audit records    {directory / 'coordinator' / 'coordinator.db'}")
    out(f"   node databases   {directory / 'nodes'}/<organisation>/node.db")
    out(f"   service logs     {directory / 'logs'}")
    out(f"   portal configs   {directory / 'nodes'}/<organisation>/portal.toml")
    out("No file there contains a BSN: only pseudonyms, which no single party can reverse.")
    if only_start:
        out("Demo " + ("stopped." if ok else "FAILED: see above."))
    else:
        out("Demo " + ("finished: every step behaved as expected." if ok else "FAILED: see above."))
    return ok
