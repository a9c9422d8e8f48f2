"""Alerts and their messages, kept in the database so none is lost or sent twice.

audit.alerts holds one row per alert: opened when its condition appears, resolved when it goes away;
a unique index lets one alert per kind and key be open, so a condition seen on every sensor tick pages
once. audit.alert_deliveries holds one message per alert event and channel, retried with a growing
backoff until its channel takes it; a dead webhook delays a page, it does not lose it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from orchestration.alerting.conditions import RUNBOOK, RUNBOOK_SECTION, Condition
from orchestration.alerting.routes import Routes

log = logging.getLogger("warehouse.alerts")

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


class Outbox:
    """Opens and resolves alerts on one connection and queues their messages for the routed channels."""

    def __init__(self, conn, routes: Routes, channels: tuple[str, ...], environment: str, ui_url: str):
        self.conn = conn
        self.routes = routes
        self.channels = channels
        self.environment = environment
        self.ui_url = ui_url

    def reconcile(self, kind: str, conditions: list[Condition] | None, now: datetime) -> list[str]:
        """Open an alert for each new condition of `kind`, resolve those of its open alerts whose condition
        is gone; None (the kind could not be judged) changes nothing. Returns what was sent, a line each."""
        if conditions is None:
            return []
        lines = [line for c in conditions if (line := self.open(c, now))]
        wanted = {c.key for c in conditions}
        for alert_id, key in self._open_alerts(kind):
            if key not in wanted:
                lines.append(self.resolve(alert_id, now))
        return lines

    def open(self, condition: Condition, now: datetime) -> str | None:
        """Open the alert unless one is open for its kind and key (then only its last sighting moves)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute("""insert into audit.alerts (kind, alert_key, severity, summary, details, started_at,
                                                     last_seen_at)
                           values (%s, %s, %s, %s, %s, %s, %s)
                           on conflict (kind, alert_key) where resolved_at is null
                           do update set last_seen_at = excluded.last_seen_at
                           returning alert_id, started_at = %s""",
                        (condition.kind, condition.key, condition.severity, condition.summary,
                         json.dumps(self._details(condition), default=str), now, now, now))
            alert_id, is_new = cur.fetchone()
            if not is_new:
                return None
            return self._queue(cur, alert_id, "firing", now)

    def resolve(self, alert_id: int, now: datetime) -> str:
        with self.conn, self.conn.cursor() as cur:
            cur.execute("update audit.alerts set resolved_at = %s where alert_id = %s and resolved_at is null",
                        (now, alert_id))
            return self._queue(cur, alert_id, "resolved", now)

    def open_alerts(self, kind: str) -> list[tuple[int, str, dict]]:
        with self.conn, self.conn.cursor() as cur:
            cur.execute("""select alert_id, alert_key, details from audit.alerts
                           where kind = %s and resolved_at is null order by alert_id""", (kind,))
            return cur.fetchall()

    def _open_alerts(self, kind: str) -> list[tuple[int, str]]:
        return [(alert_id, key) for alert_id, key, _ in self.open_alerts(kind)]

    def _details(self, c: Condition) -> dict:
        return {"subject": c.subject, "values": c.values,
                "link": f"{self.ui_url}{c.link}" if c.link else self.ui_url,
                "runbook": f"{RUNBOOK[c.kind]} ({RUNBOOK_SECTION})"}

    def _queue(self, cur, alert_id: int, state: str, now: datetime) -> str:
        cur.execute("""select kind, alert_key, severity, summary, details, started_at, resolved_at
                       from audit.alerts where alert_id = %s""", (alert_id,))
        kind, key, severity, summary, details, started_at, resolved_at = cur.fetchone()
        payload = message(alert_id, state, kind, key, severity, summary, details, started_at, resolved_at,
                          self.environment)
        channels = self.routes.channels(kind, severity, self.channels)
        for channel in channels:
            cur.execute("""insert into audit.alert_deliveries (alert_id, state, channel, payload, next_attempt_at)
                           values (%s, %s, %s, %s, %s)""", (alert_id, state, channel, json.dumps(payload), now))
        level = logging.INFO if state == "resolved" else logging.ERROR if severity in ("critical", "error") \
            else logging.WARNING
        log.log(level, payload["text"] + (f" -> {', '.join(channels)}" if channels else " (no channel routed)"))
        return payload["text"]


def message(alert_id: int, state: str, kind: str, key: str, severity: str, summary: str, details: dict,
            started_at: datetime, resolved_at: datetime | None, environment: str) -> dict:
    """The payload every channel sends: what, how bad, since when (and for how long), where to look, what to do."""
    lasted = None if resolved_at is None else int((resolved_at - started_at).total_seconds() // 60)
    headline = f"[{environment}] {state.upper()} {severity} {kind}: {summary}"
    if lasted is not None:
        headline += f" (resolved after {lasted} min)"
    return {"text": headline, "alert_id": alert_id, "state": state, "kind": kind, "key": key,
            "severity": severity, "summary": summary, "subject": details["subject"], "values": details["values"],
            "environment": environment, "since": started_at.isoformat(),
            "resolved_at": resolved_at.isoformat() if resolved_at else None, "duration_minutes": lasted,
            "link": details["link"], "runbook": details["runbook"]}


def deliver_pending(conn, senders: Mapping[str, object], now: datetime, limit: int = 100) -> tuple[int, int]:
    """Send the queued messages that are due, oldest first; a failure is retried later with a backoff that
    doubles from FIRST_RETRY up to LONGEST_RETRY. Returns (delivered, failed)."""
    delivered = failed = 0
    with conn, conn.cursor() as cur:
        cur.execute("""select delivery_id, channel, payload, attempts from audit.alert_deliveries
                       where delivered_at is null and next_attempt_at <= %s
                       order by delivery_id limit %s for update skip locked""", (now, limit))
        due = cur.fetchall()
        for delivery_id, channel, payload, attempts in due:
            sender = senders.get(channel)
            try:
                if sender is None:
                    raise LookupError(f"channel {channel} is no longer configured (its settings are unset)")
                sender.send(payload)
            except Exception as exc:  # any failure of a channel: kept and retried, never lost
                failed += 1
                wait = min(FIRST_RETRY * 2 ** attempts, LONGEST_RETRY)
                error = f"{type(exc).__name__}: {exc}"[:500]
                cur.execute("""update audit.alert_deliveries set attempts = attempts + 1, last_error = %s,
                                      next_attempt_at = %s where delivery_id = %s""",
                            (error, now + wait, delivery_id))
                log.warning(f"alert {channel} delivery {delivery_id} failed ({error}); retry in "
                            f"{int(wait.total_seconds())} s: {payload['text']}")
            else:
                delivered += 1
                cur.execute("""update audit.alert_deliveries set attempts = attempts + 1, delivered_at = %s,
                                      last_error = null where delivery_id = %s""", (now, delivery_id))
    return delivered, failed


def pending(conn) -> Iterable[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute("""select channel, attempts, last_error, next_attempt_at from audit.alert_deliveries
                       where delivered_at is null order by delivery_id""")
        return cur.fetchall()
