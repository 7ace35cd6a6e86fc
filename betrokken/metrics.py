"""Prometheus metrics, one endpoint per component (``metrics_listen`` in its file; off when absent).

What is counted, per component, is listed in docs/operator.md ('Monitoring'). The rule: labels
and values are counts, durations, states and names from the network file — organisation ids,
purpose ids, node ids, error classes, alarm kinds — never a pseudonym, a case, a user or a BSN.
Every label value is checked against what the network file or the code defines (anything else
becomes ``other``), so a caller cannot put its own text into a metric.

The endpoint is plain HTTP (as Prometheus scrapes it) and listens on a loopback address only; the
schema refuses any other (``config/schema.py``). Each component has a registry of its own with
the process collectors (CPU, memory, open files) and ``betrokken_build_info``.

Per call of the component's gRPC service the servicer is wrapped (:meth:`Metrics.instrument`):
a latency histogram per method and status code, refusals per method and error class, and
component hooks (questions per purpose and completeness at the coordinator, persons evaluated
per organisation and use at the key service, lookups per purpose at a node). Figures that live in
the database (registrations, quota use, the witness state, alarms, the log's size) are read when
scraped, at most every ``CACHE_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from betrokken.clock import utcnow
from betrokken.config.schema import Network
from betrokken.errors import ALL_ERRORS, MalformedMessage, Unavailable
from betrokken.v1 import betrokken_pb2 as pb

log = logging.getLogger("betrokken.metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
CACHE_SECONDS = 10.0
ERROR_NAMES = frozenset(cls.__name__ for cls in ALL_ERRORS)
OTHER = "other"
Hook = Callable[[Any, Any, str, float, grpc.ServicerContext], None]


def bounded(value: str, allowed: Collection[str]) -> str:
    """``value`` when the network file or the code defines it, else ``other``."""
    return value if value in allowed else OTHER


def _version() -> str:
    try:
        return version("betrokken")
    except PackageNotFoundError:
        return "unknown"


class _Cached(Collector):
    """A collector whose figures come from the database, read at most every CACHE_SECONDS."""

    def __init__(self, read: Callable[[], list[GaugeMetricFamily]]) -> None:
        self.read = read
        self._lock = threading.Lock()
        self._at = 0.0
        self._families: list[GaugeMetricFamily] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._at > CACHE_SECONDS:
                try:
                    self._families = self.read()
                except Exception as exc:  # the database may be away: say so, keep serving
                    log.warning("metrics: could not read the database (%s)", type(exc).__name__)
                    self._families = [
                        GaugeMetricFamily(
                            "betrokken_database_readable",
                            "1 when the metrics could read the database at the last scrape",
                            value=0,
                        )
                    ]
                    self._at = 0.0
                    return iter(self._families)
                self._families.append(
                    GaugeMetricFamily(
                        "betrokken_database_readable",
                        "1 when the metrics could read the database at the last scrape",
                        value=1,
                    )
                )
                self._at = time.monotonic()
            return iter(list(self._families))


def gauge(name: str, documentation: str, value: float | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class Metrics:
    """One component's metrics registry, its call instrumentation and its endpoint."""

    def __init__(self, component: str, network: Network) -> None:
        self.component = component
        self.network = network
        self.organisations = frozenset(o.id for o in network.organisations)
        self.purposes = frozenset(p.id for p in network.purposes)
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        Info("betrokken_build", "The betrokken version and component", registry=self.registry).info(
            {"version": _version(), "component": component, "network": network.name[:64]}
        )
        self.serving = Gauge(
            "betrokken_serving",
            "1 when this component's health service reports SERVING, else 0",
            registry=self.registry,
        )
        self.calls = Histogram(
            "betrokken_rpc_duration_seconds",
            "Time to handle a gRPC call, by method and status code",
            ["method", "code"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "betrokken_refusals",
            "Calls refused, by method and the class of the error (see docs/operator.md)",
            ["method", "reason"],
            registry=self.registry,
        )
        self._hooks: dict[str, Hook] = {}
        self._timers: dict[tuple[str, str], Any] = {}
        self._methods: set[str] = set()
        self._server: Any = None

    # --- calls ------------------------------------------------------------------------------------
    def on(self, method: str, hook: Hook) -> None:
        """Run ``hook(request, response or None, code, seconds, context)`` after each call."""
        self._hooks[method] = hook

    def instrument(self, servicer: Any) -> Any:
        """The servicer with every RPC method measured (register this one with the server)."""
        return _Instrumented(servicer, self)

    def record(
        self,
        method: str,
        request: Any,
        response: Any,
        context: grpc.ServicerContext,
        seconds: float,
    ) -> None:
        try:
            code = "OK"
            if response is None:
                status = context.code()  # type: ignore[attr-defined]
                code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
                metadata = dict(context.trailing_metadata() or ())  # type: ignore[attr-defined]
                reason = bounded(str(metadata.get("betrokken-error", "")), ERROR_NAMES)
                self.refusals.labels(method, reason).inc()
            timer = self._timers.get((method, code))
            if timer is None:  # a child per label values, made once (labels() costs each call)
                timer = self._timers[(method, code)] = self.calls.labels(method, code)
            timer.observe(seconds)
            hook = self._hooks.get(method)
            if hook is not None:
                hook(request, response, code, seconds, context)
        except Exception:  # a metric never breaks a call
            log.debug("metrics: recording %s failed", method, exc_info=True)

    # --- figures read from the database ---------------------------------------------------------
    def collect_from(self, read: Callable[[], list[GaugeMetricFamily]]) -> None:
        self.registry.register(_Cached(read))

    # --- the endpoint ---------------------------------------------------------------------------
    def serve(self, listen: str | None) -> Metrics:
        if not listen:
            return self
        host, port = listen.rsplit(":", 1)
        try:
            self._server, _thread = start_http_server(
                int(port), addr=host.strip("[]"), registry=self.registry
            )
        except OSError as exc:
            raise Unavailable(
                f"cannot serve metrics on {listen} ({exc.strerror or exc})",
                hint="is another process using that port? change metrics_listen in the "
                "component's file",
            ) from None
        log.info("%s metrics on http://%s/metrics", self.component, listen)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Instrumented:
    """A servicer whose public methods are measured by :meth:`Metrics.record`."""

    def __init__(self, servicer: Any, metrics: Metrics) -> None:
        self._servicer = servicer
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._servicer, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        metrics = self._metrics

        def measured(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            response = None
            try:
                response = attribute(request, context)
                return response
            finally:
                metrics.record(name, request, response, context, time.perf_counter() - started)

        return measured


def _peek(note: str) -> Any:
    from betrokken.crypto.question import peek_question

    try:
        return peek_question(note)
    except MalformedMessage:
        return None


# --- the coordinator ----------------------------------------------------------------------------
def coordinator_metrics(
    network: Network,
    log_size: Callable[[], int],
    node_status: Callable[[], dict[str, int | None]] | None = None,
) -> tuple[Metrics, Callable[[str, str, float], None]]:
    """The coordinator's metrics, and the observer its node links report each lookup to."""
    metrics = Metrics("coordinator", network)
    nodes = frozenset(o.id for o in network.nodes())
    registry = metrics.registry
    questions = Counter(
        "betrokken_coordinator_questions",
        "Questions answered, by asking organisation, purpose and completeness",
        ["organisation", "purpose", "completeness"],
        registry=registry,
    )
    partial = Counter(
        "betrokken_coordinator_partial_answers",
        "Questions answered without every node's answer (some node unreachable or failed)",
        ["purpose"],
        registry=registry,
    )
    persons = Counter(
        "betrokken_coordinator_persons",
        "Persons asked about, by asking organisation and purpose",
        ["organisation", "purpose"],
        registry=registry,
    )
    seconds = Histogram(
        "betrokken_coordinator_question_duration_seconds",
        "Time from receiving a question to returning its answer, by purpose",
        ["purpose"],
        buckets=BUCKETS,
        registry=registry,
    )
    lookups = Counter(
        "betrokken_coordinator_node_lookups",
        "Lookups sent to nodes, by node and how they ended (answered, unreachable, failed, "
        "deadline, witness-retry, not-serving)",
        ["node", "status"],
        registry=registry,
    )
    lookup_seconds = Histogram(
        "betrokken_coordinator_node_lookup_duration_seconds",
        "Time a node took to answer a lookup, by node",
        ["node"],
        buckets=BUCKETS,
        registry=registry,
    )

    def query(request: Any, response: Any, code: str, took: float, _: Any) -> None:
        if response is None:
            return
        question = _peek(request.question)
        organisation = bounded(question.requester, metrics.organisations) if question else OTHER
        purpose = bounded(question.purpose, metrics.purposes) if question else OTHER
        complete = all(reply.status == pb.ANSWERED for reply in response.replies)
        questions.labels(organisation, purpose, "complete" if complete else "partial").inc()
        if not complete:
            partial.labels(purpose).inc()
        persons.labels(organisation, purpose).inc(question.persons if question else 0)
        seconds.labels(purpose).observe(took)

    metrics.on("Query", query)

    # Each node's counters and histogram looked up once (a lookup per node per question).
    counters: dict[tuple[str, str], Any] = {}
    timers: dict[str, Any] = {}

    def observe(node: str, status: str, took: float) -> None:
        counter = counters.get((node, status))
        if counter is None:
            counter = counters[node, status] = lookups.labels(bounded(node, nodes), status)
        counter.inc()
        if status == "answered":
            timer = timers.get(node)
            if timer is None:
                timer = timers[node] = lookup_seconds.labels(bounded(node, nodes))
            timer.observe(took)

    def read() -> list[GaugeMetricFamily]:
        families = [
            gauge(
                "betrokken_audit_log_records", "Records in this component's audit log", log_size()
            )
        ]
        if node_status is not None:
            family = GaugeMetricFamily(
                "betrokken_coordinator_node_serving",
                "Health each node last reported: 1 serving, 0 not serving (skipped), -1 unknown",
                labels=["node"],
            )
            for node, status in sorted(node_status().items()):
                value = {1: 1, 2: 0}.get(status or -1, -1)  # 1: SERVING, 2: NOT_SERVING
                family.add_metric([bounded(node, nodes)], value)
            families.append(family)
        return families

    metrics.collect_from(read)
    return metrics, observe


# --- the key service ----------------------------------------------------------------------------
USES = ("question", "import")


def keyservice_metrics(
    network: Network,
    usage: Callable[[dt.date, str], dict[str, int]],
    log_size: Callable[[], int],
) -> Metrics:
    metrics = Metrics("keyservice", network)
    evaluated = Counter(
        "betrokken_keyservice_persons",
        "Persons evaluated (blinded elements), by organisation and use (question or import)",
        ["organisation", "use"],
        registry=metrics.registry,
    )
    keys = Counter(
        "betrokken_keyservice_evaluations",
        "Evaluations made: persons times the organisations' keys they were evaluated under",
        ["organisation", "use"],
        registry=metrics.registry,
    )

    def evaluate(request: Any, response: Any, code: str, took: float, context: Any) -> None:
        if response is None:
            return
        organisation = bounded(_caller(context), metrics.organisations)
        use = "import" if request.use == pb.IMPORT else "question"
        count = len(request.blinded_elements)
        evaluated.labels(organisation, use).inc(count)
        keys.labels(organisation, use).inc(count * len(request.organisations))

    metrics.on("Evaluate", evaluate)

    def read() -> list[GaugeMetricFamily]:
        today = utcnow().date()
        used = GaugeMetricFamily(
            "betrokken_keyservice_quota_used_persons",
            "Persons evaluated today (UTC) against each organisation's daily quota, by use",
            labels=["organisation", "use"],
        )
        limit = GaugeMetricFamily(
            "betrokken_keyservice_quota_limit_persons",
            "Each organisation's daily quota from the network file, by use",
            labels=["organisation", "use"],
        )
        for use in USES:
            counts = usage(today, use)
            for org in network.organisations:
                used.add_metric([org.id, use], counts.get(org.id, 0))
                quota = (
                    network.daily_bulk_quota(org.id)
                    if use == "import"
                    else network.daily_quota(org.id)
                )
                limit.add_metric([org.id, use], quota)
        records = gauge(
            "betrokken_audit_log_records", "Records in this component's audit log", log_size()
        )
        return [used, limit, records]

    metrics.collect_from(read)
    return metrics


def _caller(context: Any) -> str:
    """The calling organisation of an answered call (its certificate parsed once per process)."""
    from betrokken.identity.rpc import certificate_organisation

    pems = (context.auth_context() or {}).get("x509_pem_cert") or []
    return (certificate_organisation(pems[0]) if pems else None) or OTHER


# --- a node -------------------------------------------------------------------------------------
def node_metrics(
    network: Network,
    read_figures: Callable[[], Iterable[tuple[str, str, float, dict[str, str]]]],
    question_of: Callable[[Any], Any] | None = None,
) -> Metrics:
    """A node's metrics. ``read_figures`` yields (name, help, value, labels) from its database;
    ``question_of`` gives a lookup's question as the servicer read it (else it is read here)."""
    metrics = Metrics("node", network)
    lookups = Counter(
        "betrokken_node_lookups",
        "Lookups this node received, by purpose and outcome (answered, or refused: see "
        "betrokken_refusals_total and the alarms)",
        ["purpose", "outcome"],
        registry=metrics.registry,
    )
    persons = Counter(
        "betrokken_node_persons_looked_up",
        "Persons looked up in answered lookups, by purpose",
        ["purpose"],
        registry=metrics.registry,
    )

    children: dict[tuple[str, str], Any] = {}  # a child per label values, made once

    def lookup(request: Any, response: Any, code: str, took: float, _: Any) -> None:
        question = question_of(request) if question_of is not None else None
        if question is None:
            question = _peek(request.question)
        purpose = bounded(question.purpose, metrics.purposes) if question else OTHER
        outcome = "answered" if response is not None else "refused"
        counter = children.get((purpose, outcome))
        if counter is None:
            counter = children[(purpose, outcome)] = lookups.labels(purpose, outcome)
        counter.inc()
        if response is not None and question is not None:
            looked_up = children.get((purpose, ""))
            if looked_up is None:
                looked_up = children[(purpose, "")] = persons.labels(purpose)
            looked_up.inc(question.persons)

    metrics.on("Lookup", lookup)

    def read() -> list[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for name, documentation, value, labels in read_figures():
            family = families.get(name)
            if family is None:
                family = GaugeMetricFamily(name, documentation, labels=sorted(labels))
                families[name] = family
            family.add_metric([labels[k] for k in sorted(labels)], value)
        return list(families.values())

    metrics.collect_from(read)
    return metrics


Figure = tuple[str, str, float, dict[str, str]]


def node_figures(store: Any, witness: Any, own_key_id: str) -> Callable[[], list[Figure]]:
    """What a node's database says, as figures: registrations (the effect of imports), the
    disclosures its trail holds, what it witnessed of the coordinator's log, and its alarms."""
    import re

    kind_pattern = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")

    def read() -> list[Figure]:
        status = store.status(utcnow().date())
        figures: list[Figure] = [
            ("betrokken_node_registrations_active", "Active registrations", status.active, {}),
            (
                "betrokken_node_registrations_ending_unconfirmed",
                "Active registrations that end within 30 days unless the case system confirms "
                "them again (import or register)",
                status.ending_unconfirmed,
                {},
            ),
            (
                "betrokken_node_registrations_ended_not_removed",
                "Ended registrations not yet removed by the expiry",
                status.ended_not_yet_removed,
                {},
            ),
            (
                "betrokken_node_registrations_old_key",
                "Registrations under another key id than this organisation's: they never match; "
                "re-import them",
                sum(n for key, n in status.key_ids.items() if key != own_key_id),
                {},
            ),
            (
                "betrokken_node_withdrawals_remembered",
                "Withdrawals by hand remembered so that an import does not undo them",
                status.withdrawals_remembered,
                {},
            ),
            (
                "betrokken_node_last_confirmation_timestamp_seconds",
                "When the case system last confirmed a registration (import or register), Unix "
                "time; 0 never",
                status.last_confirmation.timestamp() if status.last_confirmation else 0,
                {},
            ),
            (
                "betrokken_node_disclosures",
                "Disclosures recorded in this node's trail (within the retention term)",
                status.disclosures,
                {},
            ),
            (
                "betrokken_audit_log_records",
                "Records in this component's audit log",
                store.trail.size(),
                {},
            ),
        ]
        last = witness.last()
        figures += [
            (
                "betrokken_node_witnessed_size",
                "Size of the coordinator's log this node last accepted (0: none yet)",
                last.size if last else 0,
                {},
            ),
            (
                "betrokken_node_witnessed_timestamp_seconds",
                "When this node last accepted a larger checkpoint of the coordinator's log, Unix "
                "time; 0 never",
                last.accepted_at.timestamp() if last and last.accepted_at else 0,
                {},
            ),
            (
                "betrokken_node_checkpoints_unconfirmed",
                "Checkpoints shown with questions that the witness has not confirmed yet",
                len(witness.unconfirmed()),
                {},
            ),
        ]
        kinds: dict[str, int] = {}
        alarms = witness.alarms()
        for alarm in alarms:
            kind = alarm.kind if kind_pattern.match(alarm.kind) else OTHER
            kinds[kind] = kinds.get(kind, 0) + 1
        figures.append(
            (
                "betrokken_node_alarms_recorded",
                "Alarms of every kind in this node's trail (alert when it grows)",
                len(alarms),
                {},
            )
        )
        for kind, count in sorted(kinds.items()):
            figures.append(
                (
                    "betrokken_node_alarms",
                    "Alarms in this node's trail, by kind (docs/operator.md, 'Alarms')",
                    count,
                    {"kind": kind},
                )
            )
        return figures

    return read
