"""Starting a node from its configuration file, with automatic expiry of ended registrations and
the trail writer that turns answered questions' outbox entries into trail records."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from betrokken import rules
from betrokken.audit.keys import log_origin, read_log_key
from betrokken.audit.record import AuditEntry, Event
from betrokken.audit.retention import prune_expired
from betrokken.audit.witness import WitnessStore
from betrokken.clock import utcnow
from betrokken.config.load import Loaded, load_node
from betrokken.config.schema import FeedSystem, Network, NodeConfig
from betrokken.db import CHECKPOINT_SECONDS, checkpoint, report_writable
from betrokken.errors import ConfigError, Unavailable, VerificationError
from betrokken.health import Health, database_writable
from betrokken.identity.keyfiles import read_envelope_key
from betrokken.identity.names import Identity, Role
from betrokken.identity.pins import Pins, reloading
from betrokken.identity.rpc import check_own_certificate, make_server
from betrokken.metrics import node_figures, node_metrics
from betrokken.node import deferrals, feeds, outbox
from betrokken.node.anchor import Anchor, measure, problem, read_anchor, refusal, write_anchor
from betrokken.node.clockwatch import ClockWatch, clock_file
from betrokken.node.late import LATE_INTERVAL_SECONDS, CoordinatorMailbox, late_loop
from betrokken.node.servicer import NodeServicer
from betrokken.node.store import NodeStore
from betrokken.node.witness import (
    CoordinatorLog,
    SampleResult,
    compare_with_peers,
    sample_records,
    witness_once,
)
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.node")
STARTUP_RETRY_SECONDS = 2.0
# How often the trail writer looks for answered questions: a disclosure has its trail record
# within a second of the answer. A fixed rhythm, not woken by a hit (which a busy database would
# show in the time of the next lookup).
OUTBOX_INTERVAL_SECONDS = 0.5
# How long the registration API keeps a call's idempotency key and answer (docs/adr/0035): a
# case system retries within minutes or hours; a week covers a weekend's outage.
FEED_KEY_DAYS = 7


@dataclass
class RunningNode:
    server: grpc.Server
    listen: str
    stop_expiry: threading.Event
    writer: TrailWriter | None = None
    anchor: Callable[[], object] | None = None  # writes the state file once more at the end
    feeds: Callable[[], None] | None = None  # stops the registration API, when it runs

    def stop(self) -> None:
        if self.feeds is not None:
            self.feeds()
        self.server.stop(grace=1).wait()
        self.after_stop()

    def after_stop(self) -> None:
        """Once the server stopped answering: end the loops, record what was answered last."""
        self.stop_expiry.set()
        if self.writer is not None:
            try:
                self.writer.drain()
            except Exception:
                log.exception("the trail writer could not finish; the next start does")
        if self.anchor is not None:
            try:
                self.anchor()
            except Exception:
                log.exception("could not write the node's state file at the end")


class TrailWriter:
    """Turns answered questions' outbox entries into trail records (node/outbox.py)."""

    def __init__(self, store: NodeStore, network: Network, organisation: str) -> None:
        self.store = store
        self.network = network
        self.organisation = organisation

    def _legal_basis(self, purpose_id: str) -> str:
        purpose = self.network.purpose(purpose_id)
        return purpose.legal_basis if purpose else ""

    def _aanmelder(self, purpose_id: str, requester: str, on_behalf_of: str) -> dict[str, str]:
        return rules.recorded_aanmelder(self.network, purpose_id, requester, on_behalf_of)

    def _records(self, entries: Sequence[bytes]) -> list[AuditEntry]:
        records = outbox.records(entries, self.organisation, self._legal_basis, self._aanmelder)
        for record in records:
            if record.event is Event.DISCLOSURE:
                log.info(
                    "disclosed answer_id=%s requester=%s purpose=%s",
                    record.answer_id,
                    record.organisation,
                    record.purpose,
                )
        return records

    def _contact(self, organisation_id: str) -> str:
        organisation = self.network.organisation(organisation_id)
        return organisation.contact if organisation else ""

    def _notices(self, entries: Sequence[bytes]) -> list[outbox.Notice]:
        return outbox.notices(entries, self._contact, self._aanmelder)

    def drain(self) -> int:
        """Write every waiting entry (trail records and notices); how many there were."""
        done = 0
        while True:
            count = self.store.drain_outbox(
                self._records, notices=self._notices, also=deferrals.keep
            )
            done += count
            if count == 0:
                return done

    def loop(self, interval: float, stop: threading.Event) -> None:
        last_checkpoint = time.monotonic()
        while not stop.wait(interval):
            try:
                self.drain()
            except Exception:
                log.exception("the trail writer failed; will try again")
            if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                last_checkpoint = time.monotonic()
                try:
                    checkpoint(self.store.engine)
                except Exception as exc:
                    log.warning("could not checkpoint the database's WAL (%s)", exc)


def _expiry_loop(
    loaded: Loaded[NodeConfig],
    store: NodeStore,
    interval: float,
    audit_years: int,
    freshness: int,
    stop: threading.Event,
    notice_days: int = 90,
) -> None:
    """Remove ended registrations, replay marks past the freshness window, notices past their
    term, and trail records past the retention term; then anchor what the database holds."""
    while True:
        now = dt.datetime.now(dt.UTC)
        try:
            removed = store.expire(now.date())
            if removed:
                log.info("expired %d ended registration(s)", removed)
            store.forget_answered(now - dt.timedelta(seconds=2 * freshness))
            store.forget_notices(now - dt.timedelta(days=notice_days))
            store.forget_feed_requests(now - dt.timedelta(days=FEED_KEY_DAYS))
            # Kept a month less than the coordinator keeps its log: a sampled record was never
            # pruned there (docs/adr/0042).
            store.forget_records(now.date() - dt.timedelta(days=365 * audit_years - 30))
            pruned = prune_expired(store.trail, audit_years, now, "retention-schedule")
            if pruned.count:
                log.info("retention: %s", pruned.describe())
        except Exception:
            log.exception("expiry failed; will try again")
        try:
            refresh_anchor(loaded, store)
        except Exception:
            log.exception("could not write the node's state file; will try again")
        if stop.wait(interval):
            return


FEED_CHECK_SECONDS = 60.0


def _feed_alarm_loop(
    store: NodeStore, feeding: Sequence[FeedSystem], interval: float, stop: threading.Event
) -> None:
    """An alarm (trail and log) for each feeding system quiet longer than it may be
    (docs/operator.md, 'Feeds')."""
    while True:
        try:
            feeds.raise_quiet_alarms(store, feeding, utcnow())
        except Exception:
            log.exception("feed health check failed; will try again")
        if stop.wait(interval):
            return


def open_store(loaded: Loaded[NodeConfig]) -> NodeStore:
    """The node's store with its trail signer, checked against the key the network pins."""
    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None
    signer = read_log_key(loaded.resolve(loaded.component.log_key), org.log_key)
    return NodeStore(loaded.component.database, signer, signer.name)


def open_witness(store: NodeStore) -> WitnessStore:
    """The node's witness state; what every question reads of it kept in memory (one copy per
    database in this process, shared by the servicer, the witness loop and the anchor)."""
    return WitnessStore(store.engine, store.trail, store.organisation, in_memory=True)


# --- the anchor outside the database (node/anchor.py) ---------------------------------------------
def anchor_path(loaded: Loaded[NodeConfig]) -> Path:
    return loaded.resolve(loaded.component.state_file)


def clock_path(loaded: Loaded[NodeConfig]) -> Path:
    """Where the coordinator's clock offset, as this node measured it last, is kept."""
    return clock_file(anchor_path(loaded))


def check_coordinator(
    store: NodeStore, witness_store: WitnessStore, source: CoordinatorLog, clock: ClockWatch
) -> SampleResult:
    """After a witness check: keep the coordinator's clock as measured with its checkpoint, and
    check a sample of the records of questions this node answered (docs/adr/0042). Raises
    :class:`VerificationError` on a damaged record (already an alarm in the trail)."""
    if source.clock is not None:
        offset, uncertainty = source.clock
        source.clock = None
        clock.measured(offset, uncertainty)
    result = sample_records(store, witness_store, source)
    if result.checked or result.skipped:
        log.debug("witness: %s", result.describe())
    return result


def _verifier(loaded: Loaded[NodeConfig]) -> str:
    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None
    return org.log_key


def read_own_anchor(loaded: Loaded[NodeConfig]) -> Anchor | None:
    return read_anchor(anchor_path(loaded), _verifier(loaded))


def open_anchored_store(loaded: Loaded[NodeConfig]) -> NodeStore:
    """The node's store, refused (:class:`DataLost`, exit code 11) when its database is empty or
    older than what the node anchored in its state file: never a node that lost registrations
    answering "not involved"."""
    path = anchor_path(loaded)
    anchor = read_own_anchor(loaded)
    try:
        store = open_store(loaded)
    except Unavailable as exc:  # an older schema (SchemaOutdated) says `db upgrade` instead
        if anchor is None or anchor.trail_size == 0:
            raise
        # A database that cannot be opened while the anchor says it held data (a lost WAL, a
        # half-copied file): the way on is the backup, not the database URL.
        raise refusal(
            path,
            (
                f"de database van de node is niet te openen ({exc.message}), maar had "
                f"{anchor.trail_size:,} records en {anchor.active:,} actieve registraties",
                f"the node's database cannot be opened ({exc.message}), but held "
                f"{anchor.trail_size:,} records and {anchor.active:,} active registrations",
            ),
        ) from None
    if anchor is not None:
        why = problem(anchor, store.trail)
        if why is not None:
            log.error("refusing to serve: %s", why[1])
            raise refusal(path, why)
    return store


def refresh_anchor(
    loaded: Loaded[NodeConfig], store: NodeStore, *, replace: bool = False
) -> Anchor | None:
    """Write the anchor of the database as it is now (never one of a smaller trail than the
    anchor on file: that database is refused, not anchored — unless ``replace``, for ``node
    reset`` and ``restore``). None when not written."""
    if store.trail.signer is None:
        return None
    path = anchor_path(loaded)
    now = dt.datetime.now(dt.UTC)
    accepted = open_witness(store).last()
    current = measure(
        store.trail,
        store.organisation,
        store.status(now.date()).active,
        accepted.size if accepted else 0,
        now,
    )
    if not replace:
        old = read_own_anchor(loaded)
        if old is not None and problem(old, store.trail) is not None:
            return None
    write_anchor(path, current, store.trail.signer)
    return current


def _witness_loop(
    loaded: Loaded[NodeConfig],
    store: NodeStore,
    interval: float,
    stop: threading.Event,
    pins: Pins,
) -> None:
    network = loaded.network
    witness_store = open_witness(store)
    clock = ClockWatch(clock_path(loaded), witness_store)
    source: CoordinatorLog | None = None  # made in the loop: a refused certificate is retried
    origin = log_origin(network.name, "coordinator")
    wait = 0.0  # witness at once; until the first checkpoint is accepted, retry every few seconds
    while not stop.wait(wait):
        wait = interval
        try:
            source = source or CoordinatorLog(network, loaded.tls, pins=pins)
            result = witness_once(witness_store, source, network.coordinator.log_key, origin)
            if result.changed:
                log.info("witness: %s", result.describe())
        except VerificationError:
            pass  # already logged loudly and stored as an alarm
        except Exception as exc:
            if witness_store.last() is None:
                wait = min(interval, STARTUP_RETRY_SECONDS)
                log.info("witness: the coordinator's log is not reachable yet (%s); retrying", exc)
            else:
                log.warning("witness: could not check the coordinator's log (%s)", exc)
        if source is None:
            continue
        try:
            check_coordinator(store, witness_store, source, clock)
        except VerificationError:
            pass  # already logged loudly and stored as an alarm
        except Exception as exc:
            log.warning("witness: could not check the records of answered questions (%s)", exc)
        # Then compare with one or two other nodes, directly: a coordinator showing this node
        # a history of its own is seen here even when it got that history cosigned.
        try:
            for compared in compare_with_peers(
                witness_store,
                network,
                loaded.component.organisation,
                loaded.tls,
                source,
                network.coordinator.log_key,
                origin,
                pins,
            ):
                if compared.outcome != "consistent":
                    log.info("witness: %s", compared.describe())
        except Exception as exc:
            log.warning("witness: could not compare with other nodes (%s)", exc)
    if source is not None:
        source.close()


def start(config_path: Path | str) -> RunningNode:
    loaded = load_node(config_path)
    network = loaded.network
    org = network.organisation(loaded.component.organisation)
    assert org is not None  # checked by load_node
    listen = loaded.component.listen or org.node_address
    if not listen:
        raise ConfigError(
            f"{loaded.path}: organisation '{org.id}' has no node_address in the network file",
            hint="set node_address for it, or 'listen' in this file",
        )
    check_own_certificate(loaded.tls, Identity(Role.ORGANISATION, org.id), org.server_name, network)
    if not loaded.component.envelope_key:
        raise ConfigError(
            f"{loaded.path}: a node needs 'envelope_key' (the file with its private HPKE key)",
            hint='add envelope_key = "envelope.key" (written by `betrokken network init`)',
        )
    envelope_key = read_envelope_key(
        loaded.resolve(loaded.component.envelope_key), org.envelope_key
    )
    store = open_anchored_store(loaded)
    pins = reloading(loaded)
    server = make_server(listen, loaded.tls, pins=pins)
    report_writable(store.engine, loaded.component.database, f"node of {org.id}")
    witness = open_witness(store)
    # Answers left by a previous run (a crash between answer and trail record) first.
    writer = TrailWriter(store, network, org.id)
    left = writer.drain()
    if left:
        log.info("trail writer: %d answered question(s) of the previous run recorded", left)
    servicer = NodeServicer(network, org, store, envelope_key, witness, pins=pins)
    # Operations (docs/operator.md, 'Monitoring'): metrics of every call, the health service.
    figures = node_figures(store, witness, org.pseudonym_key_id)
    feeding = loaded.component.feeds
    metrics = node_metrics(
        network,
        lambda: figures() + feeds.feed_figures(store, feeding, utcnow()),
        servicer.question_of,
    )
    pb_grpc.add_NodeServicer_to_server(metrics.instrument(servicer), server)
    health = Health(
        server,
        "node",
        [database_writable(store.engine)],
        loaded.component.health_interval_seconds,
        on_change=lambda serving: metrics.serving.set(int(serving)),
    )
    server.start()
    health.start()
    metrics.serve(loaded.component.metrics_listen)
    stop = threading.Event()
    threading.Thread(
        target=_expiry_loop,
        args=(
            loaded,
            store,
            loaded.component.expiry_interval_seconds,
            network.retention.audit_years,
            network.coordinator.freshness_seconds,
            stop,
            network.after_the_hit.notice_days,
        ),
        daemon=True,
        name="expiry",
    ).start()
    threading.Thread(
        target=writer.loop, args=(OUTBOX_INTERVAL_SECONDS, stop), daemon=True, name="trail-writer"
    ).start()
    threading.Thread(
        target=_witness_loop,
        args=(loaded, store, loaded.component.witness_interval_seconds, stop, pins),
        daemon=True,
        name="witness",
    ).start()
    if store.trail.signer is not None:  # late answers are signed with the trail key
        threading.Thread(
            target=late_loop,
            args=(
                store,
                network,
                org,
                store.trail.signer,
                CoordinatorMailbox(network, loaded.tls, pins),
                LATE_INTERVAL_SECONDS,
                stop,
            ),
            daemon=True,
            name="late-answers",
        ).start()
    if any(f.quiet_after_minutes for f in feeding):
        threading.Thread(
            target=_feed_alarm_loop,
            args=(store, feeding, FEED_CHECK_SECONDS, stop),
            daemon=True,
            name="feed-health",
        ).start()
    log.info("node of '%s' listening on %s", org.id, listen)
    stop_feed_api = _start_feeds(loaded, store)
    return RunningNode(
        server, listen, stop, writer, lambda: refresh_anchor(loaded, store), feeds=stop_feed_api
    )


def _start_feeds(loaded: Loaded[NodeConfig], store: NodeStore) -> Callable[[], None] | None:
    """The registration API for the organisation's case systems, when node.toml has [feed_api]
    (node/feeds_http.py, node/feeds_grpc.py): its HTTP gateway and, with grpc_listen, its gRPC
    service, both TLS with the node's certificate. Returns what stops them."""
    api = loaded.component.feed_api
    if api is None:
        return None
    from betrokken.node import feeds_grpc, feeds_http

    gateway = feeds_http.serve(loaded, store)
    assert gateway is not None
    grpc_server: grpc.Server | None = None
    if api.grpc_listen:
        grpc_server, _port = feeds_grpc.make_server(
            api.grpc_listen, loaded.tls, gateway.service, gateway.tokens
        )
        grpc_server.start()
        log.info("registration API (gRPC) on %s", api.grpc_listen)

    def stop_feeds() -> None:
        if grpc_server is not None:
            grpc_server.stop(grace=1).wait()
        gateway.stop()

    return stop_feeds
