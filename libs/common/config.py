"""Settings from the environment (prefix BACKOFFICE_) and command-line flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {"directory": 50050, "procurement": 50051, "hr": 50052, "finance": 50053}


@dataclass
class RelaySettings:
    """How an outbox relay (libs/common/outbox.py) polls, waits and backs off."""

    poll_seconds: float = 1.0
    timeout_seconds: float = 5.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    batch_size: int = 200


class AuthSettings(BaseModel):
    issuer: str = "backoffice-dev"
    audience: str = "backoffice"
    # Pinned: a token signed with any other algorithm (or "none") is refused.
    algorithms: list[str] = ["EdDSA"]
    # PEM public keys that verify callers' tokens. Empty: the development key in data_dir.
    public_key_files: list[Path] = []
    # The PEM private key that `backoffice token` and the services' own calls sign with.
    # Empty: data_dir/keys/dev-signing-key.pem, created on first use.
    signing_key_file: Path | None = None
    # Leeway for clock skew between machines when checking exp and nbf.
    leeway_seconds: int = 30


class TracingSettings(BaseModel):
    # none (default): no spans; otlp: OTLP over gRPC to `endpoint` (the `otlp` extra);
    # console: spans as JSON on stdout, for a look on a laptop.
    exporter: Literal["none", "otlp", "console"] = "none"
    # OTLP collector, e.g. http://otel-collector.monitoring:4317; empty: OTEL_EXPORTER_OTLP_ENDPOINT.
    endpoint: str | None = None
    # Share of new traces kept; a caller's sampling decision is always followed.
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_", env_nested_delimiter="__", extra="ignore")

    # SQLite files, development keys and other local state.
    data_dir: Path = Path("var")
    # One PostgreSQL URL for every service (each keeps its own schema); empty means SQLite.
    database_url: str | None = None
    # Per-service overrides, e.g. BACKOFFICE_DATABASE_URLS='{"finance": "postgresql+psycopg://..."}'.
    database_urls: dict[str, str] = {}
    # On PostgreSQL the services run as a role that owns nothing and bypasses nothing, so
    # that row-level security applies: `{app_role_prefix}_{service}`. The migrator grants
    # it; if the login user differs, each connection does SET ROLE to it.
    app_role_prefix: str = "backoffice_app"
    db_pool_size: int = 8
    host: str = "127.0.0.1"
    ports: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_PORTS))
    # gRPC address of the directory, for the other services; default: host and its port.
    directory_target: str | None = None
    # gRPC addresses of the other services, e.g. {"finance": "finance:50053"} on Kubernetes;
    # default: those started in the same process, else host and the service's port.
    service_targets: dict[str, str] = {}
    # The transactional outbox relay (libs/common/outbox.py): how often it looks for due
    # events, each delivery's deadline, and the exponential backoff between retries.
    outbox_poll_seconds: float = 1.0
    outbox_timeout_seconds: float = 5.0
    outbox_backoff_initial_seconds: float = 0.5
    outbox_backoff_max_seconds: float = 60.0
    # The deadline of a service's own reads from another inside a caller's request (finance
    # reading an order from procurement, say).
    peer_timeout_seconds: float = 5.0
    # How long a service trusts the directory's answer about agreements.
    grants_cache_seconds: float = 5.0
    # Processes serving each service on the same ports (`backoffice serve --workers`): one
    # Python process uses about one core, so more workers use more cores.
    workers: int = 1
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    # Seconds in-flight calls get to finish after SIGTERM (keep below the pod's
    # terminationGracePeriodSeconds minus its preStop delay).
    shutdown_grace_seconds: float = 10.0
    # Prometheus /metrics over HTTP on this port (all interfaces); 0: not served.
    metrics_port: int = 0
    tracing: TracingSettings = TracingSettings()
    auth: AuthSettings = AuthSettings()
    # Signs page tokens; every replica of a service must share it. Empty: derived from
    # the signing key (fine for one machine, not for several pods).
    page_token_secret: str | None = None
    # The OCDS publisher prefix that every ocid starts with. Production needs one
    # registered with the Open Contracting Partnership.
    ocds_prefix: str = "ocds-b0ffce"
    # The web admin console (services/console, issue 10): its HTTP port; whether
    # `backoffice serve` starts it beside the services; and whether its development
    # sign-in (a token minted here with the signing key for any user and roles) is offered.
    # Unset: on for the embedded SQLite setup only; the production overlay sets it false, and
    # tokens then come from the identity provider. Whether its cookies (the session's bearer
    # token, the CSRF token) are `Secure`, sent over HTTPS only: unset, they are unless the
    # development sign-in is on (a laptop's plain http://127.0.0.1); the Kubernetes base sets
    # it true, the console being reached through a TLS-terminating ingress.
    console_port: int = 8081
    console_enabled: bool = True
    console_dev_sign_in: bool | None = None
    console_secure_cookies: bool | None = None

    def database_url_for(self, service: str) -> str:
        if service in self.database_urls:
            return self.database_urls[service]
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def app_role_for(self, service: str) -> str:
        return f"{self.app_role_prefix}_{service}"

    def port_for(self, service: str) -> int:
        return self.ports.get(service, DEFAULT_PORTS.get(service, 0))

    def directory_address(self) -> str:
        return self.directory_target or f"{self.host}:{self.port_for('directory')}"

    def relay_settings(self) -> RelaySettings:
        return RelaySettings(
            poll_seconds=self.outbox_poll_seconds,
            timeout_seconds=self.outbox_timeout_seconds,
            backoff_initial_seconds=self.outbox_backoff_initial_seconds,
            backoff_max_seconds=self.outbox_backoff_max_seconds,
        )

    def console_dev_sign_in_enabled(self) -> bool:
        if self.console_dev_sign_in is not None:
            return self.console_dev_sign_in
        return not self.database_url and not self.database_urls

    def console_secure_cookies_enabled(self) -> bool:
        if self.console_secure_cookies is not None:
            return self.console_secure_cookies
        return not self.console_dev_sign_in_enabled()

    def signing_key_path(self) -> Path:
        return self.auth.signing_key_file or self.data_dir / "keys" / "dev-signing-key.pem"
