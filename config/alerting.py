"""Alerting settings: which sinks hear about decisions, for which services, and how loudly.

Read by :func:`rollback.alerting.build_router` at start-up. Secrets never live here: a PagerDuty
sink names *where* its routing key is (an environment variable or a mounted file) and the key is
read when the router is built; ``check-config`` can print :meth:`RoutingKeySource.status` ("set"
/ "not set"), never the value.

A service can narrow the global setup with ``services.<name>.alerting``
(:class:`ServiceAlertingSettings`): a subset of the sinks, a stricter minimum severity, its own
PagerDuty routing key (one PagerDuty service per owning team) and extra dashboard links.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from detector.core.types import Severity

DEFAULT_ROUTING_KEY_ENV = "CANARY_SENTINEL_PAGERDUTY_ROUTING_KEY"
ROUTING_KEY_LENGTH = 32
LINK_PLACEHOLDERS = frozenset({"service", "namespace", "revision", "verdict"})
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretError(ValueError):
    """A secret cannot be read or has the wrong shape. The message names the source and the
    problem, never the value."""


class RoutingKeyError(SecretError):
    """The routing key cannot be read or has the wrong shape."""


class SecretSource(_Strict):
    """Where a secret is read from: an environment variable or a file (a mounted Kubernetes
    Secret). When `file` is given, `env` is ignored."""

    what: ClassVar[str] = "secret"
    env: str | None = Field(None, description="Environment variable holding the secret.")
    file: Path | None = Field(
        None,
        description=(
            "File holding the secret (surrounding whitespace is ignored). Takes precedence over "
            "`env`."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> SecretSource:
        if self.file is None and not self.env:
            raise ValueError(
                f"name an environment variable (`env`) or a `file` for the {self.what}"
            )
        return self

    def describe(self) -> str:
        """Where the secret comes from, for messages (never the secret itself)."""
        if self.file is not None:
            return f"file {self.file}"
        return f"environment variable {self.env}"

    def _error(self, problem: str) -> SecretError:
        return SecretError(f"{self.what} {self.describe()} {problem}")

    def _raw(self) -> str:
        if self.file is not None:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise self._error(f"cannot be read: {exc.strerror}") from None
        assert self.env is not None  # guaranteed by _one_source
        value = os.environ.get(self.env)
        if value is None:
            raise self._error("is not set")
        return value.strip()

    def read(self) -> SecretStr:
        """The secret, checked to be non-empty. Raises :class:`SecretError`."""
        value = self._raw()
        if not value:
            raise self._error("is empty")
        return SecretStr(value)

    def status(self) -> str:
        """``"set"`` or the problem, for ``check-config`` (never the value)."""
        try:
            self.read()
        except SecretError as exc:
            return str(exc)
        return f"set ({self.describe()})"


class RoutingKeySource(SecretSource):
    """Where a PagerDuty routing (integration) key is read from: an environment variable or a
    file (a mounted Kubernetes Secret). When `file` is given, `env` is ignored."""

    what: ClassVar[str] = "routing key"
    env: str | None = Field(
        DEFAULT_ROUTING_KEY_ENV,
        description="Environment variable holding the 32-character Events API v2 routing key.",
    )
    file: Path | None = Field(
        None,
        description=(
            "File holding the routing key (surrounding whitespace is ignored); re-read when it "
            "changes. Takes precedence over `env`."
        ),
    )

    def read(self) -> SecretStr:
        """The key, checked to be 32 characters. Raises :class:`RoutingKeyError`."""
        try:
            key = self._raw()
        except SecretError as exc:
            raise RoutingKeyError(str(exc)) from None
        if len(key) != ROUTING_KEY_LENGTH:
            raise RoutingKeyError(
                f"routing key {self.describe()} has {len(key)} characters; PagerDuty "
                f"integration keys have {ROUTING_KEY_LENGTH}"
            )
        return SecretStr(key)


class LinkTemplate(_Strict):
    """A link shown on the alert (a dashboard, a runbook), templated per rollout."""

    text: str = Field(
        ..., min_length=1, description="Link text, e.g. `Grafana: canary vs baseline`."
    )
    href: str = Field(
        ...,
        description=(
            "http(s) URL template; `{service}`, `{namespace}`, `{revision}` and `{verdict}` are "
            "replaced (URL-encoded), e.g. "
            "`https://grafana/d/x?var-service={service}&var-namespace={namespace}`."
        ),
    )

    @field_validator("href")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        unknown = names - LINK_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {sorted(unknown)}; use {sorted(LINK_PLACEHOLDERS)}"
            )
        if urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return v


class _SinkBase(_Strict):
    min_severity: Severity = Field(
        Severity.INFO,
        description=(
            "Least severe decision this sink is told about (critical > error > warning > info)."
        ),
    )


class LogSinkSettings(_SinkBase):
    """Writes each alert as one structured log line."""

    type: Literal["log"] = Field("log", description="`log` writes each alert as a log line.")
    name: str = Field("log", min_length=1, description="Unique name (metrics label, health).")


class PagerDutySinkSettings(_SinkBase):
    """PagerDuty Events API v2 (alert events) and Change Events (rollback markers)."""

    type: Literal["pagerduty"] = Field(description="`pagerduty`: Events API v2.")
    name: str = Field("pagerduty", min_length=1, description="Unique name (metrics label, health).")
    base_url: str = Field(
        "https://events.pagerduty.com",
        description="Events API base URL (EU: `https://events.eu.pagerduty.com`).",
    )
    routing_key: RoutingKeySource = Field(
        default_factory=RoutingKeySource,
        description="Where the routing key is read from (never the key itself).",
    )
    change_events: bool = Field(
        True,
        description="Also send a Change Event for every rollback action and recovery.",
    )
    source: str | None = Field(
        None, description="`payload.source`; default `<namespace>/<service>` of the rollout."
    )
    client_url: str | None = Field(
        None, description="`client_url` shown in PagerDuty (e.g. this service's dashboard)."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="HTTP timeout of one call.")
    max_calls_per_minute: int = Field(
        100,
        ge=1,
        le=120,
        description=(
            "Client-side limit per routing key over a sliding 60 s window; PagerDuty accepts "
            "about 120 and drops the rest (429), so leave room for other clients of the key."
        ),
    )


class BasicAuth(_Strict):
    """HTTP basic auth: a user name and where its password is read from."""

    username: str = Field(..., min_length=1, description="User name.")
    password: SecretSource = Field(..., description="Where the password is read from.")


class ClientTLS(_Strict):
    """How an https:// sink URL is trusted, and the client certificate to present (if any)."""

    ca_file: Path | None = Field(
        None, description="PEM CA bundle to trust instead of the system store."
    )
    cert_file: Path | None = Field(None, description="PEM client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="PEM key of `cert_file`.")
    insecure_skip_verify: bool = Field(
        False, description="Do not verify the server certificate (test setups only)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ClientTLS:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both `cert_file` and `key_file`, or neither")
        if self.insecure_skip_verify and self.ca_file is not None:
            raise ValueError("`ca_file` and `insecure_skip_verify` contradict each other")
        return self


class AlertmanagerSinkSettings(_SinkBase):
    """Prometheus Alertmanager API v2."""

    type: Literal["alertmanager"] = Field(description="`alertmanager`: POST /api/v2/alerts.")
    name: str = Field(
        "alertmanager", min_length=1, description="Unique name (metrics label, health)."
    )
    url: str = Field(..., description="Alertmanager base URL, e.g. `http://alertmanager:9093`.")
    timeout_seconds: float = Field(10.0, gt=0, description="HTTP timeout of one call.")
    resend_interval_seconds: float | None = Field(
        60.0,
        gt=0,
        description=(
            "Re-send open alerts this often (Alertmanager resolves an alert `resolve_timeout`, "
            "5 m by default, after its last receipt). `null` never re-sends."
        ),
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra labels on every alert (e.g. `team: payments`); routing in Alertmanager.",
    )
    basic_auth: BasicAuth | None = Field(
        None,
        description=(
            "HTTP basic auth: Alertmanager's own (`--web.config.file`, `basic_auth_users`) or a "
            "proxy's in front of it. The password is read at start."
        ),
    )
    bearer_token: SecretSource | None = Field(
        None,
        description=(
            "Sent as `Authorization: Bearer` (an authenticating proxy, a hosted Alertmanager). "
            "Read at start."
        ),
    )
    tls: ClientTLS | None = Field(None, description="TLS settings of an https:// URL.")

    @model_validator(mode="after")
    def _auth(self) -> AlertmanagerSinkSettings:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("set `basic_auth` or `bearer_token`, not both")
        if self.tls is not None and not self.url.startswith("https://"):
            raise ValueError("`tls` needs an https:// url")
        return self

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in v if not _LABEL_NAME.fullmatch(k))
        if bad:
            raise ValueError(f"invalid Prometheus label names {bad} (use [a-zA-Z_][a-zA-Z0-9_]*)")
        return v


SinkSettings = Annotated[
    LogSinkSettings | PagerDutySinkSettings | AlertmanagerSinkSettings,
    Field(discriminator="type"),
]
"""One sink, chosen by its `type:` (an unknown type is a load-time error)."""


class ServiceAlertingSettings(_Strict):
    """Per-service routing (``services.<name>.alerting``); unset fields inherit."""

    sinks: tuple[str, ...] | None = Field(
        None, description="Names of the `alerting.sinks` this service uses; default: all."
    )
    min_severity: Severity | None = Field(
        None, description="Least severe decision alerted for this service; default: global."
    )
    pagerduty_routing_key: RoutingKeySource | None = Field(
        None,
        description=(
            "Routing key for this service's PagerDuty sinks (its team's PagerDuty service)."
        ),
    )
    links: tuple[LinkTemplate, ...] = Field(
        (), description="Extra links for this service's alerts, after the global ones."
    )


class AlertingSettings(_Strict):
    """Global alerting settings; services narrow them with `services.<name>.alerting`."""

    sinks: tuple[SinkSettings, ...] = Field(
        default_factory=lambda: (LogSinkSettings(),),
        description="Where alerts go. Default: the log.",
    )
    min_severity: Severity = Field(
        Severity.INFO, description="Least severe decision alerted at all (per service: override)."
    )
    links: tuple[LinkTemplate, ...] = Field(
        (), description="Links on every alert (dashboards), templated per rollout."
    )
    outbox_path: Path = Field(
        Path("state/outbox.sqlite3"),
        description=(
            "SQLite file of the delivery outbox (alerts waiting to be delivered survive a "
            "restart). One file per worker process; relative paths are from the working directory."
        ),
    )
    retry_initial_seconds: float = Field(
        2.0, gt=0, description="First retry delay after a 429, 5xx or network error (doubles)."
    )
    retry_max_seconds: float = Field(60.0, gt=0, description="Cap of the retry delay.")
    retention_seconds: float = Field(
        7 * 86400.0,
        gt=0,
        description="How long delivered or rejected entries stay in the outbox for inspection.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> AlertingSettings:
        names = [s.name for s in self.sinks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sink names must be unique; repeated: {dupes} (set `name:`)")
        return self

    def check_services(self, services: dict[str, Any]) -> list[tuple[str, str]]:
        """Problems with per-service routing (sink names that do not exist), as
        ``(field path, message)`` pairs; ``services`` maps names to objects with an
        ``alerting`` attribute (``ServiceSettings``)."""
        known = {s.name for s in self.sinks}
        problems: list[tuple[str, str]] = []
        for name, svc in services.items():
            al: ServiceAlertingSettings | None = getattr(svc, "alerting", None)
            for sink in (al.sinks or ()) if al is not None else ():
                if sink not in known:
                    problems.append(
                        (
                            f"services.{name}.alerting.sinks",
                            f"no sink named {sink!r}; known: {sorted(known)}",
                        )
                    )
        return problems
