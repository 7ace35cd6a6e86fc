"""The network and node files' models as plain data, for the light reader (config/light.py).

Generated from config/schema.py by tools/config_shape.py; do not edit (a test compares).
"""

from typing import Any

SHAPES: dict[str, Any] = {
    "Aanmelder": {
        "field_checks": (),
        "fields": (
            (
                "organisation",
                "organisation",
                ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()),
                ("required",),
            ),
            ("legal_basis", "legal_basis", ("str", {"min_length": 1}, ()), ("required",)),
        ),
        "model_checks": (),
    },
    "AccessRequestSettings": {
        "field_checks": (),
        "fields": (
            ("purpose", "purpose", ("str", {}, ()), ("value", "")),
            ("source", "source", ("str", {}, ()), ("value", "")),
        ),
        "model_checks": (),
    },
    "AdviceCode": {
        "field_checks": (("label", "advice_label"),),
        "fields": (
            ("code", "code", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), ("required",)),
            ("label", "label", ("str", {"min_length": 1}, ()), ("required",)),
        ),
        "model_checks": (),
    },
    "AfterTheHit": {
        "field_checks": (),
        "fields": (
            ("notice_days", "notice_days", ("int", {"ge": 1, "le": 3660}, ()), ("value", 90)),
            (
                "follow_up_working_days",
                "follow_up_working_days",
                ("int", {"ge": 1, "le": 260}, ()),
                ("value", 10),
            ),
            (
                "follow_up_goal_percent",
                "follow_up_goal_percent",
                ("int", {"ge": 0, "le": 100}, ()),
                ("value", 90),
            ),
        ),
        "model_checks": (),
    },
    "CoordinatorSettings": {
        "field_checks": (),
        "fields": (
            (
                "address",
                "address",
                ("str", {"pattern": "^[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}$"}, ()),
                ("required",),
            ),
            ("max_batch", "max_batch", ("int", {"ge": 1, "le": 10000}, ()), ("value", 100)),
            (
                "deadline_seconds",
                "deadline_seconds",
                ("float", {"gt": 0, "le": 60}, ()),
                ("value", 3.0),
            ),
            ("log_key", "log_key", ("str", {}, ()), ("required",)),
            (
                "rate_limit_per_minute",
                "rate_limit_per_minute",
                ("int", {"ge": 1}, ()),
                ("value", 600),
            ),
            (
                "freshness_seconds",
                "freshness_seconds",
                ("int", {"ge": 10, "le": 3600}, ()),
                ("value", 120),
            ),
            (
                "tls_name",
                "tls_name",
                ("str", {"pattern": "^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$"}, ()),
                ("value", "coordinator.betrokken.internal"),
            ),
            (
                "certificates",
                "certificates",
                ("list", ("str", {}, ("normalise_certificate",)), {}, ()),
                ("factory", "list"),
            ),
            (
                "witnesses",
                "witnesses",
                (
                    "optional",
                    ("list", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), {}, ()),
                ),
                ("value", None),
            ),
            (
                "witness_quorum",
                "witness_quorum",
                ("optional", ("int", {"ge": 0}, ())),
                ("value", None),
            ),
        ),
        "model_checks": (),
    },
    "DisclosurePolicy": {
        "field_checks": (),
        "fields": (
            (
                "organisation",
                "organisation",
                ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()),
                ("required",),
            ),
            (
                "purpose",
                "purpose",
                ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()),
                ("required",),
            ),
            ("level", "level", ("enum", "DisclosureLevel", {}, ()), ("required",)),
            ("providing_basis", "providing_basis", ("str", {}, ()), ("value", "")),
            (
                "decided_by",
                "decided_by",
                ("list", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), {}, ()),
                ("factory", "list"),
            ),
        ),
        "model_checks": (),
    },
    "FeedApi": {
        "field_checks": (),
        "fields": (
            (
                "listen",
                "listen",
                ("str", {"pattern": "^[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}$"}, ()),
                ("value", "127.0.0.1:8470"),
            ),
            (
                "grpc_listen",
                "grpc_listen",
                ("optional", ("str", {"pattern": "^[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}$"}, ())),
                ("value", None),
            ),
            ("max_changes", "max_changes", ("int", {"ge": 1, "le": 10000}, ()), ("value", 1000)),
        ),
        "model_checks": (),
    },
    "FeedSystem": {
        "field_checks": (),
        "fields": (
            ("name", "name", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), ("required",)),
            (
                "token_sha256",
                "token_sha256",
                ("optional", ("str", {"pattern": "^[0-9a-f]{64}$"}, ())),
                ("value", None),
            ),
            (
                "client_cert_cn",
                "client_cert_cn",
                ("optional", ("str", {"max_length": 253}, ())),
                ("value", None),
            ),
            ("drop_folder", "drop_folder", ("optional", ("path", {}, ())), ("value", None)),
            (
                "quiet_after_minutes",
                "quiet_after_minutes",
                ("optional", ("int", {"ge": 1}, ())),
                ("value", None),
            ),
            (
                "hold_back_share",
                "hold_back_share",
                ("float", {"ge": 0.0, "le": 1.0}, ()),
                ("value", 0.1),
            ),
        ),
        "model_checks": (),
    },
    "ImportSettings": {
        "field_checks": (),
        "fields": (("columns", "columns", ("dict", ("str", {}, ()), {}, ()), ("factory", "dict")),),
        "model_checks": (),
    },
    "KeyServiceSettings": {
        "field_checks": (("suite", "known_suite"),),
        "fields": (
            (
                "address",
                "address",
                ("str", {"pattern": "^[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}$"}, ()),
                ("required",),
            ),
            ("suite", "suite", ("str", {}, ()), ("value", "ristretto255-SHA512")),
            (
                "default_daily_quota",
                "default_daily_quota",
                ("int", {"ge": 0}, ()),
                ("value", 20000),
            ),
            ("quotas", "quotas", ("dict", ("int", {}, ()), {}, ()), ("factory", "dict")),
            (
                "default_daily_bulk_quota",
                "default_daily_bulk_quota",
                ("int", {"ge": 0}, ()),
                ("value", 200000),
            ),
            ("bulk_quotas", "bulk_quotas", ("dict", ("int", {}, ()), {}, ()), ("factory", "dict")),
            (
                "default_daily_access_quota",
                "default_daily_access_quota",
                ("int", {"ge": 0}, ()),
                ("value", 20),
            ),
            (
                "access_quotas",
                "access_quotas",
                ("dict", ("int", {}, ()), {}, ()),
                ("factory", "dict"),
            ),
            ("max_batch", "max_batch", ("int", {"ge": 1, "le": 100000}, ()), ("value", 1000)),
            ("log_key", "log_key", ("str", {}, ()), ("value", "")),
            (
                "tls_name",
                "tls_name",
                ("str", {"pattern": "^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$"}, ()),
                ("value", "keyservice.betrokken.internal"),
            ),
            (
                "certificates",
                "certificates",
                ("list", ("str", {}, ("normalise_certificate",)), {}, ()),
                ("factory", "list"),
            ),
        ),
        "model_checks": (),
    },
    "Network": {
        "field_checks": (),
        "fields": (
            ("name", "name", ("str", {"min_length": 1}, ()), ("required",)),
            (
                "desk_contact",
                "desk_contact",
                ("str", {}, ()),
                ("value", "the Zorg- en Veiligheidshuis desk"),
            ),
            (
                "organisations",
                "organisations",
                ("list", ("model", "Organisation", {}, ()), {"min_length": 2}, ()),
                ("required",),
            ),
            (
                "purposes",
                "purposes",
                ("list", ("model", "Purpose", {}, ()), {"min_length": 1}, ()),
                ("required",),
            ),
            (
                "policies",
                "policies",
                ("list", ("model", "DisclosurePolicy", {}, ()), {}, ()),
                ("factory", "list"),
            ),
            ("keyservice", "keyservice", ("model", "KeyServiceSettings", {}, ()), ("required",)),
            ("coordinator", "coordinator", ("model", "CoordinatorSettings", {}, ()), ("required",)),
            ("retention", "retention", ("model", "Retention", {}, ()), ("factory", "Retention")),
            (
                "advice_codes",
                "advice_codes",
                ("list", ("model", "AdviceCode", {}, ()), {}, ()),
                ("factory", "list"),
            ),
            (
                "office_hours",
                "office_hours",
                ("model", "OfficeHours", {}, ()),
                ("factory", "OfficeHours"),
            ),
            (
                "access_requests",
                "access_requests",
                ("model", "AccessRequestSettings", {}, ()),
                ("factory", "AccessRequestSettings"),
            ),
            ("roles", "roles", ("list", ("model", "Role", {}, ()), {}, ()), ("factory", "list")),
            (
                "service_accounts",
                "service_accounts",
                ("list", ("model", "ServiceAccount", {}, ()), {}, ()),
                ("factory", "list"),
            ),
            (
                "user_limits",
                "user_limits",
                ("model", "UserLimits", {}, ()),
                ("factory", "UserLimits"),
            ),
            (
                "after_the_hit",
                "after_the_hit",
                ("model", "AfterTheHit", {}, ()),
                ("factory", "AfterTheHit"),
            ),
        ),
        "model_checks": ("network_consistent", "network_access_request_purpose"),
    },
    "NodeConfig": {
        "field_checks": (("feeds", "distinct_feeds"),),
        "fields": (
            ("network", "network", ("str", {}, ()), ("required",)),
            (
                "organisation",
                "organisation",
                ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()),
                ("required",),
            ),
            ("database", "database", ("str", {}, ()), ("required",)),
            ("tls", "tls", ("model", "TlsFiles", {}, ()), ("required",)),
            ("log_key", "log_key", ("str", {}, ()), ("required",)),
            ("envelope_key", "envelope_key", ("optional", ("str", {}, ())), ("value", None)),
            ("question_key", "question_key", ("optional", ("str", {}, ())), ("value", None)),
            (
                "listen",
                "listen",
                ("optional", ("str", {"pattern": "^[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}$"}, ())),
                ("value", None),
            ),
            (
                "expiry_interval_seconds",
                "expiry_interval_seconds",
                ("float", {"gt": 0}, ()),
                ("value", 3600.0),
            ),
            (
                "witness_interval_seconds",
                "witness_interval_seconds",
                ("float", {"gt": 0}, ()),
                ("value", 60.0),
            ),
            (
                "metrics_listen",
                "metrics_listen",
                (
                    "optional",
                    ("str", {"pattern": "^[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}$"}, ("loopback",)),
                ),
                ("value", None),
            ),
            (
                "health_interval_seconds",
                "health_interval_seconds",
                ("float", {"gt": 0, "le": 3600}, ()),
                ("value", 5.0),
            ),
            (
                "import_",
                "import",
                ("model", "ImportSettings", {}, ()),
                ("factory", "ImportSettings"),
            ),
            ("state_file", "state_file", ("str", {}, ()), ("value", "node.state")),
            (
                "sync_guard_share",
                "sync_guard_share",
                ("float", {"ge": 0.0, "le": 1.0}, ()),
                ("value", 0.1),
            ),
            (
                "feeds",
                "feeds",
                ("list", ("model", "FeedSystem", {}, ()), {}, ()),
                ("factory", "list"),
            ),
            ("feed_api", "feed_api", ("optional", ("model", "FeedApi", {}, ())), ("value", None)),
        ),
        "model_checks": (),
    },
    "OfficeHours": {
        "field_checks": (),
        "fields": (
            ("start", "start", ("int", {"ge": 0, "le": 23}, ()), ("value", 7)),
            ("end", "end", ("int", {"ge": 1, "le": 24}, ()), ("value", 19)),
            ("weekend", "weekend", ("bool", {}, ()), ("value", False)),
        ),
        "model_checks": ("office_hours_not_empty",),
    },
    "Organisation": {
        "field_checks": (
            ("name", "organisation_name"),
            ("case_pattern", "case_pattern"),
            ("domain", "organisation_domain"),
            ("contact", "organisation_contact"),
            ("envelope_key", "envelope_key"),
        ),
        "fields": (
            ("id", "id", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), ("required",)),
            ("name", "name", ("str", {"min_length": 1}, ()), ("required",)),
            ("domain", "domain", ("str", {"min_length": 1}, ()), ("required",)),
            ("contact", "contact", ("str", {"min_length": 1}, ()), ("required",)),
            (
                "node_address",
                "node_address",
                ("optional", ("str", {"pattern": "^[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}$"}, ())),
                ("value", None),
            ),
            (
                "pseudonym_key",
                "pseudonym_key",
                ("str", {"pattern": "^[0-9a-f]{64}$"}, ()),
                ("required",),
            ),
            ("envelope_key", "envelope_key", ("str", {}, ()), ("value", "")),
            ("question_key", "question_key", ("str", {}, ()), ("value", "")),
            (
                "tls_name",
                "tls_name",
                (
                    "optional",
                    ("str", {"pattern": "^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$"}, ()),
                ),
                ("value", None),
            ),
            (
                "default_disclosure",
                "default_disclosure",
                ("enum", "DisclosureLevel", {}, ()),
                ("value", "none"),
            ),
            ("professional_secrecy", "professional_secrecy", ("bool", {}, ()), ("value", False)),
            ("acts_for_others", "acts_for_others", ("bool", {}, ()), ("value", False)),
            ("case_pattern", "case_pattern", ("str", {}, ()), ("value", "")),
            ("log_key", "log_key", ("str", {}, ()), ("value", "")),
            (
                "defer_message",
                "defer_message",
                ("str", {}, ()),
                (
                    "value",
                    "A professional of this organisation will decide whether "
                    "information can be shared for this case.",
                ),
            ),
            (
                "certificates",
                "certificates",
                ("list", ("str", {}, ("normalise_certificate",)), {}, ()),
                ("factory", "list"),
            ),
        ),
        "model_checks": ("organisation_node_has_envelope_key",),
    },
    "Purpose": {
        "field_checks": (),
        "fields": (
            ("id", "id", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), ("required",)),
            ("description", "description", ("str", {"min_length": 1}, ()), ("required",)),
            ("legal_basis", "legal_basis", ("str", {"min_length": 1}, ()), ("required",)),
            (
                "allowed_organisations",
                "allowed_organisations",
                (
                    "list",
                    ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()),
                    {"min_length": 1},
                    (),
                ),
                ("required",),
            ),
            (
                "allowed_roles",
                "allowed_roles",
                ("list", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), {}, ()),
                ("factory", "list"),
            ),
            (
                "on_behalf_of",
                "on_behalf_of",
                ("list", ("model", "Aanmelder", {}, ()), {}, ()),
                ("factory", "list"),
            ),
            ("watch_days", "watch_days", ("int", {"ge": 0, "le": 3660}, ()), ("value", 0)),
            (
                "office_hours",
                "office_hours",
                ("optional", ("model", "OfficeHours", {}, ())),
                ("value", None),
            ),
            ("defer_hours", "defer_hours", ("float", {"gt": 0, "le": 720}, ()), ("value", 72.0)),
        ),
        "model_checks": (),
    },
    "Retention": {
        "field_checks": (),
        "fields": (
            ("registration_days", "registration_days", ("int", {"ge": 1}, ()), ("value", 730)),
            ("audit_years", "audit_years", ("int", {"ge": 5}, ()), ("value", 5)),
        ),
        "model_checks": (),
    },
    "Role": {
        "field_checks": (),
        "fields": (
            ("id", "id", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), ("required",)),
            ("label", "label", ("str", {"min_length": 1}, ()), ("required",)),
        ),
        "model_checks": (),
    },
    "ServiceAccount": {
        "field_checks": (),
        "fields": (
            (
                "organisation",
                "organisation",
                ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()),
                ("required",),
            ),
            ("user", "user", ("str", {"max_length": 128, "min_length": 1}, ()), ("required",)),
            ("role", "role", ("str", {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}, ()), ("required",)),
        ),
        "model_checks": (),
    },
    "TlsFiles": {
        "field_checks": (),
        "fields": (
            ("certificate", "certificate", ("str", {}, ()), ("required",)),
            ("private_key", "private_key", ("str", {}, ()), ("required",)),
            ("ca", "ca", ("str", {}, ()), ("required",)),
        ),
        "model_checks": (),
    },
    "UserLimits": {
        "field_checks": (),
        "fields": (
            ("daily_persons", "daily_persons", ("int", {"ge": 1}, ()), ("value", 200)),
            ("persons_per_case", "persons_per_case", ("int", {"ge": 1}, ()), ("value", 8)),
        ),
        "model_checks": (),
    },
}
