"""Alerts as on-call receives them: through a real local webhook, Slack endpoint and SMTP server, once
when a condition starts and once when it resolves, kept and retried while a channel is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ingestion.schema import ensure_schema
from orchestration.check_history import record_check
from orchestration.database import cursor
from orchestration.resources import WarehouseResource
from tests.conftest import query
from tests.listeners import HttpListener, SmtpListener
from tests.test_operations import add_event

pytestmark = pytest.mark.db


@pytest.fixture()
def webhook(monkeypatch):
    listener = HttpListener().up()
    monkeypatch.setenv("WAREHOUSE_ALERT_WEBHOOK_URL", listener.url)
    monkeypatch.setenv("WAREHOUSE_ENVIRONMENT", "test-env")
    monkeypatch.setenv("WAREHOUSE_UI_URL", "http://dagster.example:3000")
    yield listener
    listener.down()


def freshness_tick() -> str:
    from orchestration.defs.freshness import freshness_alert_sensor

    return freshness_alert_sensor(dg.build_sensor_context(resources={"warehouse": WarehouseResource()})).skip_message


def warehouse_tick(instance=None) -> str:
    from orchestration.defs.alerts import warehouse_alert_sensor

    context = dg.build_sensor_context(instance=instance or dg.DagsterInstance.ephemeral(),
                                      resources={"warehouse": WarehouseResource()})
    return warehouse_alert_sensor(context).skip_message


def test_raw_freshness_pages_once_with_what_on_call_needs_and_resolves_once(warehouse, webhook, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_FRESHNESS_MAX_LAG_MINUTES", "60")
    add_event(warehouse, "old", datetime.now(UTC) - timedelta(hours=5))

    freshness_tick()
    freshness_tick()  # still stale: no second page
    [page] = webhook.received
    assert page["state"] == "firing" and page["kind"] == "raw_freshness" and page["severity"] == "error"
    assert page["text"].startswith("[test-env] FIRING error raw_freshness: warehouse is stale: newest event ")
    assert page["values"]["limit_minutes"] == 60 and 299 <= page["values"]["lag_minutes"] <= 301
    assert page["link"] == "http://dagster.example:3000/assets/raw/usage_events"
    assert page["runbook"].startswith("No new events reach raw.usage_events")
    assert "docs/operations.md#on-call-runbook" in page["runbook"]
    assert page["environment"] == "test-env" and page["duration_minutes"] is None

    add_event(warehouse, "new", datetime.now(UTC) - timedelta(minutes=5))
    freshness_tick()
    freshness_tick()
    assert [p["state"] for p in webhook.received] == ["firing", "resolved"]
    resolved = webhook.received[1]
    assert resolved["since"] == page["since"] and resolved["duration_minutes"] == 0
    assert query(warehouse, "select kind, resolved_at is not null from audit.alerts") == [("raw_freshness", True)]
    assert query(warehouse, "select state, attempts, delivered_at is not null from audit.alert_deliveries "
                            "order by delivery_id") == [("firing", 1, True), ("resolved", 1, True)]


def test_a_page_to_a_dead_webhook_is_kept_and_delivered_once_it_is_up(warehouse, monkeypatch):
    from orchestration.alerting.channels import senders
    from orchestration.alerting.outbox import FIRST_RETRY, deliver_pending
    from orchestration.settings import Settings

    listener = HttpListener()  # down: nothing listens on its port yet
    monkeypatch.setenv("WAREHOUSE_ALERT_WEBHOOK_URL", listener.url)
    assert "0 delivered, 1 failed (retried later" in freshness_tick()  # empty warehouse: stale
    [(attempts, error, due, delivered)] = query(
        warehouse, "select attempts, last_error, next_attempt_at - now(), delivered_at from audit.alert_deliveries")
    assert attempts == 1 and delivered is None
    assert error.startswith("DeliveryError: webhook http://127.0.0.1:") and "/***" in error and "secret" not in error
    assert FIRST_RETRY - timedelta(seconds=30) < due <= FIRST_RETRY  # then 2, 4, ... minutes, at most an hour
    freshness_tick()  # before its retry time: not tried again, and no second alert queued
    assert query(warehouse, "select count(*), max(attempts) from audit.alert_deliveries") == [(1, 1)]

    listener.up()
    try:
        conn = WarehouseResource().connect()
        try:  # the retry time has come
            assert deliver_pending(conn, senders(Settings.from_env()), datetime.now(UTC) + timedelta(minutes=3)) \
                == (1, 0)
        finally:
            conn.close()
        [page] = listener.received
        assert page["kind"] == "raw_freshness" and page["summary"] == "no usage events in the warehouse yet"
        assert query(warehouse, "select attempts, last_error, delivered_at is not null from audit.alert_deliveries") \
            == [(2, None, True)]
    finally:
        listener.down()


def test_a_failed_blocking_check_pages_with_its_summary_and_resolves_when_it_passes(warehouse, webhook):
    with cursor(warehouse) as cur:
        ensure_schema(cur)
    conn = WarehouseResource().connect()
    summary = "cost_usd >= 0 failed on 2 of 1,200 rows (e.g. -0.5): fix the source rows"
    try:
        record_check(conn, check_name="raw_usage_events_suite", asset_key="raw/usage_events",
                     partition="2026-06-01-03:00", success=False, severity="error", observed={"unexpected": 2},
                     run_id="r1", summary=summary)
        record_check(conn, check_name="fct_usage_hourly_suite", asset_key="marts/fct_usage_hourly",
                     partition="2026-06-01-03:00", success=False, severity="warn", observed={}, run_id="r1",
                     summary="a WARN pages no one")
        warehouse_tick()
        warehouse_tick()
        [page] = webhook.received
        assert page["kind"] == "failed_check" and page["subject"] == "raw_usage_events_suite"
        assert page["summary"] == f"blocking check raw_usage_events_suite of raw/usage_events failed on " \
                                  f"2026-06-01-03:00: {summary}"
        assert page["values"]["partition"] == "2026-06-01-03:00" and page["values"]["observed"] == {"unexpected": 2}
        assert page["link"] == "http://dagster.example:3000/assets/raw/usage_events?view=checks"

        record_check(conn, check_name="raw_usage_events_suite", asset_key="raw/usage_events",
                     partition="2026-06-01-03:00", success=True, severity="none", observed={}, run_id="r2",
                     summary="passed")
    finally:
        conn.close()
    warehouse_tick()
    assert [(p["kind"], p["state"]) for p in webhook.received] == [("failed_check", "firing"),
                                                                   ("failed_check", "resolved")]


def test_a_failed_run_pages_once_and_resolves_when_its_job_next_succeeds(warehouse, webhook, tmp_path, monkeypatch):
    from orchestration.defs.alerts import failed_run_alert_sensor
    from orchestration.runs import materialize_reference

    instance = dg.DagsterInstance.ephemeral()
    (tmp_path / "price_overrides.csv").write_text("provider,model,usd_per_mtok_input,usd_per_mtok_output\n"
                                                  "vllm,ft-2,cheap,1\n")
    monkeypatch.setenv("WAREHOUSE_REFERENCE_DIR", str(tmp_path))
    failures = []
    for _ in range(2):  # the same job fails twice: one page
        result = materialize_reference(instance)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        [entry] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        event = entry.dagster_event
        failures.append(run)
        failed_run_alert_sensor(dg.build_run_status_sensor_context(
            sensor_name="failed_run_alert_sensor", dagster_event=event, dagster_instance=instance, dagster_run=run,
            resources={"warehouse": WarehouseResource()}))
    [page] = webhook.received
    assert page["kind"] == "failed_run" and page["key"] == "reference_data_job"
    assert page["summary"].startswith("run of reference_data_job failed: ")
    assert page["link"] == f"http://dagster.example:3000/runs/{failures[0].run_id}"

    warehouse_tick(instance)  # no success yet: still open
    assert len(webhook.received) == 1
    monkeypatch.delenv("WAREHOUSE_REFERENCE_DIR")
    assert materialize_reference(instance).success
    warehouse_tick(instance)
    assert [p["state"] for p in webhook.received] == ["firing", "resolved"]


def test_routes_send_each_kind_and_severity_to_its_channels(warehouse, webhook, tmp_path, monkeypatch):
    slack = HttpListener().up()
    smtp = SmtpListener()
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n"
                      "  - kinds: [raw_freshness]\n    channels: [slack, email]\n"
                      "  - channels: [webhook]\n")
    monkeypatch.setenv("WAREHOUSE_ALERT_ROUTES", str(routes))
    monkeypatch.setenv("WAREHOUSE_SLACK_WEBHOOK_URL", slack.url)
    monkeypatch.setenv("WAREHOUSE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("WAREHOUSE_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("WAREHOUSE_ALERT_EMAIL_TO", "oncall@example.com, data@example.com")
    try:
        freshness_tick()  # an empty warehouse is stale: raw_freshness goes to Slack and e-mail only
        assert webhook.received == []
        [message] = slack.received
        assert message["text"] == "[test-env] FIRING error raw_freshness: no usage events in the warehouse yet"
        assert "<http://dagster.example:3000/assets/raw/usage_events|open in Dagster>" in str(message["blocks"])
        [mail] = smtp.messages
        assert mail["Subject"] == message["text"] and mail["To"] == "oncall@example.com, data@example.com"
        body = mail.get_content()
        assert "open in Dagster: http://dagster.example:3000/assets/raw/usage_events" in body
        assert "what to do: No new events reach raw.usage_events" in body
    finally:
        slack.down()
        smtp.stop()


def test_a_bad_routes_file_or_email_setting_names_what_to_fix(tmp_path, monkeypatch):
    from orchestration.alerting.routes import Routes
    from orchestration.settings import SettingError, Settings

    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - channels: [pager]\n")
    with pytest.raises(SettingError, match=r"route 1 has channels \['pager'\]; allowed: webhook, slack, email"):
        Routes.load(routes)
    monkeypatch.setenv("WAREHOUSE_SMTP_HOST", "mail.example.com")
    with pytest.raises(SettingError, match="WAREHOUSE_SMTP_HOST is set but WAREHOUSE_ALERT_EMAIL_TO is not"):
        Settings.from_env()


def test_alert_sensors_start_running_once_a_channel_is_set(monkeypatch):
    from orchestration.defs.alerts import default_status

    for name in ("WAREHOUSE_ALERT_WEBHOOK_URL", "WAREHOUSE_SLACK_WEBHOOK_URL", "WAREHOUSE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert default_status() == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv("WAREHOUSE_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/x")
    assert default_status() == dg.DefaultSensorStatus.RUNNING
