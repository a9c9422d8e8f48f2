"""Every setting the warehouse reads, with its documented default.

Settings come from environment variables only, and are read when a command or a run starts,
never at import time. A bad value raises `SettingError`, whose message names the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


# measured on 1M events (bench/RESULTS.md, 2026-12-05): the full build 23 % faster than on the server's defaults
DBT_PG_OPTIONS_DEFAULT = "-c jit=off -c work_mem=256MB"

# The single list docs/settings.md's table is written from (tests/test_project_files.py keeps them in step).
SETTINGS: tuple[Setting, ...] = (
    Setting("WAREHOUSE_DSN", "(unset: embedded PostgreSQL under WAREHOUSE_STATE_DIR)",
            "libpq URL of the warehouse database, e.g. postgresql://user@host:5432/warehouse"),
    Setting("DAGSTER_PG_URL", "(derived: database `dagster` on the warehouse's server)",
            "SQLAlchemy URL of Dagster's run, event-log and schedule storage"),
    Setting("WAREHOUSE_STATE_DIR", ".warehouse", "where the embedded server's data and DAGSTER_HOME live"),
    Setting("WAREHOUSE_LANDING_DIR", "data/landing", "landing zone of raw usage-log files (dt=/hour= folders)"),
    Setting("WAREHOUSE_SOURCES_DIR", "sources",
            "folder of source specs (*.yaml) that map logs in other shapes onto the event contract"),
    Setting("WAREHOUSE_REFERENCE_DIR", "reference",
            "folder of reference CSVs: price_overrides.csv, orgs.csv (time zones), org_budgets.csv"),
    Setting("WAREHOUSE_HISTORY_START", "2026-01-01",
            "the first day of the hourly partitions (read when the code location loads): landing hours before "
            "it cannot be loaded; set it to your history's first day"),
    Setting("WAREHOUSE_INGEST_WORKERS", "(the CPU cores this process may use, at most 8)",
            "processes that load a run's files side by side (1: one file after another)"),
    Setting("WAREHOUSE_DBT_PG_OPTIONS", DBT_PG_OPTIONS_DEFAULT,
            "PostgreSQL settings of dbt's sessions (libpq PGOPTIONS, `-c name=value` pairs): JIT compiling costs "
            "these models more than it saves, and their distinct counts sort in memory; empty: the server's own"),
    Setting("WAREHOUSE_RAW_RETENTION_DAYS", "30", "days of raw events and quarantined rows kept"),
    Setting("WAREHOUSE_PSEUDONYMISE_KEY", "(unset: user ids stored as sent)",
            "a secret: every user_id is stored as its keyed hash (HMAC-SHA256) from the next load on; keep it "
            "(`warehouse erase` needs it to find a user) and never change it without a reason"),
    Setting("WAREHOUSE_HOURLY_RETENTION_DAYS", "90", "days of hourly rollups kept"),
    Setting("WAREHOUSE_MAX_QUARANTINE_SHARE", "0.05",
            "a loaded file with a larger share of quarantined rows fails its hour's gate (ingestion_ledger suite)"),
    Setting("WAREHOUSE_MAX_HOURLY_ERROR_RATE", "0.5",
            "an hourly rollup row with a higher error rate is a WARN of the fct_usage_hourly suite"),
    Setting("WAREHOUSE_MAX_COST_PER_REQUEST_USD", "50",
            "a priced request above this is a WARN of the fct_event_costs suite"),
    Setting("WAREHOUSE_DATA_DOCS_DIR", "(WAREHOUSE_STATE_DIR/data_docs)",
            "where the Great Expectations Data Docs (HTML) of each gate's run are written, a folder per run"),
    Setting("WAREHOUSE_DATA_DOCS_RETENTION_DAYS", "14", "Data Docs folders older than this are deleted"),
    Setting("WAREHOUSE_FRESHNESS_MAX_LAG_MINUTES", "120",
            "newest event older than this raises a freshness alert"),
    Setting("WAREHOUSE_MARTS_MAX_LAG_MINUTES", "180",
            "newest published hour of the marts older than this raises a marts-freshness alert"),
    Setting("WAREHOUSE_ENVIRONMENT", "dev", "the name every alert and report carries (prod, staging, ...)"),
    Setting("WAREHOUSE_UI_URL", "http://127.0.0.1:3000", "the Dagster UI's address, for the links in alerts"),
    Setting("WAREHOUSE_ALERT_WEBHOOK_URL", "(unset: no webhook)", "URL that receives a JSON POST for every alert"),
    Setting("WAREHOUSE_SLACK_WEBHOOK_URL", "(unset: no Slack)",
            "a Slack incoming-webhook URL: alerts as Slack messages"),
    Setting("WAREHOUSE_SMTP_HOST", "(unset: no e-mail)", "SMTP server that sends alerts by e-mail"),
    Setting("WAREHOUSE_SMTP_PORT", "25", "its port (587 with WAREHOUSE_SMTP_STARTTLS=1)"),
    Setting("WAREHOUSE_SMTP_STARTTLS", "0", "1: upgrade the SMTP connection with STARTTLS before logging in"),
    Setting("WAREHOUSE_SMTP_USER", "(unset: no login)", "SMTP login"),
    Setting("WAREHOUSE_SMTP_PASSWORD", "(unset)", "its password"),
    Setting("WAREHOUSE_ALERT_EMAIL_FROM", "warehouse@localhost", "sender of alert e-mails"),
    Setting("WAREHOUSE_ALERT_EMAIL_TO", "(unset; needed with WAREHOUSE_SMTP_HOST)",
            "comma-separated recipients of alert e-mails"),
    Setting("WAREHOUSE_REPORTS_DIR", "(WAREHOUSE_STATE_DIR/reports)",
            "where the nightly reports are written, a folder per day (index.html and CSVs)"),
    Setting("WAREHOUSE_REPORT_TIMEZONE", "UTC",
            "the zone whose 06:00 the nightly report runs at (the day it reports is a UTC day)"),
    Setting("WAREHOUSE_REPORTS_URL", "(unset: file:// links)",
            "a URL the reports folder is served at, for the links the report's message carries"),
    Setting("WAREHOUSE_ALERT_ROUTES", "(orchestration/alerting/routes.yaml)",
            "YAML file that sends each alert kind and severity to its channels"),
    Setting("WAREHOUSE_BI_USER", "bi_reader", "login of BI tools: reads schema marts without the money"),
    Setting("WAREHOUSE_BI_PASSWORD", "(unset: no such login)", "its password; `warehouse access` creates the login"),
    Setting("WAREHOUSE_FINANCE_USER", "finance_reader", "login that reads all of schema marts, the money included"),
    Setting("WAREHOUSE_FINANCE_PASSWORD", "(unset: no such login)", "its password"),
    Setting("WAREHOUSE_PIPELINE_USER", "pipeline", "a login with the pipeline's rights (raw, build, marts), e.g. "
            "for a loader on another machine"),
    Setting("WAREHOUSE_PIPELINE_PASSWORD", "(unset: no such login)", "its password"),
    Setting("WAREHOUSE_ANALYST_PASSWORD", "(unset: asked at the prompt)",
            "password of the analyst login `warehouse access analyst NAME --org ORG` creates"),
)


def _relative_to_root(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a whole number; set it to a positive integer "
                           f"or unset it for the default {default}") from None
    if value <= 0:
        raise SettingError(f"{name}={value} must be positive; unset it for the default {default}")
    return value


def _positive_number(name: str, default: float, at_most: float | None = None) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number; set it to a positive number "
                           f"or unset it for the default {default:g}") from None
    if not value > 0 or (at_most is not None and value > at_most):
        bound = f"between 0 and {at_most:g}" if at_most is not None else "positive"
        raise SettingError(f"{name}={raw} must be {bound}; unset it for the default {default:g}")
    return value


def _role_name(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip() or default
    if not value.replace("_", "").isalnum() or len(value) > 63:
        raise SettingError(f"{name}={value!r} is not a role name: use letters, digits and _ (at most 63)")
    return value


def _http_url(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip() or default
    if not value.startswith(("http://", "https://")):
        raise SettingError(f"{name}={value.split('://')[0]!r}... is not an http(s) URL; e.g. {default}")
    return value


def _optional_url(name: str) -> str | None:
    return _http_url(name, "https://hooks.example.com/...") if os.environ.get(name, "").strip() else None


def dbt_pg_options() -> str:
    """The PGOPTIONS dbt's connections start with; each word pair must be `-c name=value`."""
    raw = os.environ.get("WAREHOUSE_DBT_PG_OPTIONS")
    value = DBT_PG_OPTIONS_DEFAULT if raw is None else raw.strip()
    words = value.split()
    pairs = list(zip(words[::2], words[1::2], strict=False))
    if len(words) % 2 or any(flag != "-c" or "=" not in setting.strip("=") for flag, setting in pairs):
        raise SettingError(f"WAREHOUSE_DBT_PG_OPTIONS={raw!r} is not a list of `-c name=value` pairs; "
                           f"e.g. {DBT_PG_OPTIONS_DEFAULT!r}, or empty for the server's own settings")
    return value


def report_timezone() -> str:
    """The zone of the nightly report's schedule; read when the code location loads."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone = os.environ.get("WAREHOUSE_REPORT_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"WAREHOUSE_REPORT_TIMEZONE={zone!r} is not a time zone; use an IANA name such as "
                           "Europe/Berlin, or unset it for UTC") from None
    return zone


def alert_channel_configured() -> bool:
    """Is any alert channel set? Read when the code location loads: the alert sensors then start running."""
    return any(os.environ.get(name, "").strip() for name in
               ("WAREHOUSE_ALERT_WEBHOOK_URL", "WAREHOUSE_SLACK_WEBHOOK_URL", "WAREHOUSE_SMTP_HOST"))


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    starttls: bool
    user: str | None
    password: str | None
    sender: str
    recipients: tuple[str, ...]

    @classmethod
    def from_env(cls) -> Smtp | None:
        host = os.environ.get("WAREHOUSE_SMTP_HOST", "").strip()
        if not host:
            return None
        recipients = tuple(r.strip() for r in os.environ.get("WAREHOUSE_ALERT_EMAIL_TO", "").split(",") if r.strip())
        if not recipients:
            raise SettingError("WAREHOUSE_SMTP_HOST is set but WAREHOUSE_ALERT_EMAIL_TO is not: set it to the "
                               "comma-separated addresses that receive alerts, or unset WAREHOUSE_SMTP_HOST")
        starttls = os.environ.get("WAREHOUSE_SMTP_STARTTLS", "").strip() or "0"
        if starttls not in ("0", "1"):
            raise SettingError(f"WAREHOUSE_SMTP_STARTTLS={starttls!r} must be 0 or 1")
        return cls(host=host, port=_positive_int("WAREHOUSE_SMTP_PORT", 25), starttls=starttls == "1",
                   user=os.environ.get("WAREHOUSE_SMTP_USER", "").strip() or None,
                   password=os.environ.get("WAREHOUSE_SMTP_PASSWORD") or None,
                   sender=os.environ.get("WAREHOUSE_ALERT_EMAIL_FROM", "").strip() or "warehouse@localhost",
                   recipients=recipients)

    def __repr__(self) -> str:  # never print the password
        return f"Smtp({self.host}:{self.port}, to={','.join(self.recipients)})"


@dataclass(frozen=True)
class Settings:
    dsn: str | None  # None means: start the embedded server
    dagster_pg_url: str | None
    state_dir: Path
    landing_dir: Path
    sources_dir: Path
    reference_dir: Path
    ingest_workers: int
    raw_retention_days: int
    hourly_retention_days: int
    freshness_max_lag_minutes: int
    alert_webhook_url: str | None
    max_quarantine_share: float
    max_hourly_error_rate: float
    max_cost_per_request_usd: float
    data_docs_dir: Path
    bi_user: str = "bi_reader"
    bi_password: str | None = None
    finance_user: str = "finance_reader"
    finance_password: str | None = None
    pipeline_user: str = "pipeline"
    pipeline_password: str | None = None
    marts_max_lag_minutes: int = 180
    environment: str = "dev"
    ui_url: str = "http://127.0.0.1:3000"
    slack_webhook_url: str | None = None
    smtp: Smtp | None = None
    alert_routes: Path = PROJECT_ROOT / "orchestration" / "alerting" / "routes.yaml"
    reports_dir: Path = PROJECT_ROOT / ".warehouse" / "reports"
    data_docs_retention_days: int = 14
    reports_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        dsn = os.environ.get("WAREHOUSE_DSN", "").strip() or None
        if dsn is not None and not dsn.startswith(("postgresql://", "postgres://")):
            raise SettingError(f"WAREHOUSE_DSN must be a libpq URL starting with postgresql://, got "
                               f"{dsn.split('://')[0]!r}; e.g. postgresql://postgres@127.0.0.1:5432/warehouse")
        state_dir = _relative_to_root(os.environ.get("WAREHOUSE_STATE_DIR", "") or ".warehouse")
        return cls(
            dsn=dsn,
            dagster_pg_url=os.environ.get("DAGSTER_PG_URL", "").strip() or None,
            state_dir=state_dir,
            landing_dir=_relative_to_root(os.environ.get("WAREHOUSE_LANDING_DIR", "") or "data/landing"),
            sources_dir=_relative_to_root(os.environ.get("WAREHOUSE_SOURCES_DIR", "") or "sources"),
            reference_dir=_relative_to_root(os.environ.get("WAREHOUSE_REFERENCE_DIR", "") or "reference"),
            ingest_workers=_positive_int("WAREHOUSE_INGEST_WORKERS", min(8, len(os.sched_getaffinity(0)))),
            raw_retention_days=_positive_int("WAREHOUSE_RAW_RETENTION_DAYS", 30),
            hourly_retention_days=_positive_int("WAREHOUSE_HOURLY_RETENTION_DAYS", 90),
            freshness_max_lag_minutes=_positive_int("WAREHOUSE_FRESHNESS_MAX_LAG_MINUTES", 120),
            alert_webhook_url=_optional_url("WAREHOUSE_ALERT_WEBHOOK_URL"),
            max_quarantine_share=_positive_number("WAREHOUSE_MAX_QUARANTINE_SHARE", 0.05, at_most=1),
            max_hourly_error_rate=_positive_number("WAREHOUSE_MAX_HOURLY_ERROR_RATE", 0.5, at_most=1),
            max_cost_per_request_usd=_positive_number("WAREHOUSE_MAX_COST_PER_REQUEST_USD", 50),
            data_docs_dir=_relative_to_root(os.environ.get("WAREHOUSE_DATA_DOCS_DIR", "")) if
            os.environ.get("WAREHOUSE_DATA_DOCS_DIR", "").strip() else state_dir / "data_docs",
            bi_user=_role_name("WAREHOUSE_BI_USER", "bi_reader"),
            bi_password=os.environ.get("WAREHOUSE_BI_PASSWORD") or None,
            finance_user=_role_name("WAREHOUSE_FINANCE_USER", "finance_reader"),
            finance_password=os.environ.get("WAREHOUSE_FINANCE_PASSWORD") or None,
            pipeline_user=_role_name("WAREHOUSE_PIPELINE_USER", "pipeline"),
            pipeline_password=os.environ.get("WAREHOUSE_PIPELINE_PASSWORD") or None,
            marts_max_lag_minutes=_positive_int("WAREHOUSE_MARTS_MAX_LAG_MINUTES", 180),
            environment=os.environ.get("WAREHOUSE_ENVIRONMENT", "").strip() or "dev",
            ui_url=_http_url("WAREHOUSE_UI_URL", "http://127.0.0.1:3000").rstrip("/"),
            slack_webhook_url=_optional_url("WAREHOUSE_SLACK_WEBHOOK_URL"),
            smtp=Smtp.from_env(),
            alert_routes=_relative_to_root(os.environ.get("WAREHOUSE_ALERT_ROUTES", "").strip()
                                           or "orchestration/alerting/routes.yaml"),
            reports_dir=_relative_to_root(os.environ["WAREHOUSE_REPORTS_DIR"].strip())
            if os.environ.get("WAREHOUSE_REPORTS_DIR", "").strip() else state_dir / "reports",
            reports_url=_optional_url("WAREHOUSE_REPORTS_URL"),
            data_docs_retention_days=_positive_int("WAREHOUSE_DATA_DOCS_RETENTION_DAYS", 14),
        )

    @property
    def alert_channels(self) -> tuple[str, ...]:
        """The alert channels whose settings are given (the log is always on)."""
        return tuple(name for name, on in (("webhook", self.alert_webhook_url), ("slack", self.slack_webhook_url),
                                           ("email", self.smtp)) if on)
