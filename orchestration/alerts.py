"""Where alerts leave: a log line always, and a JSON POST when WAREHOUSE_ALERT_WEBHOOK_URL is set."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Protocol
from urllib.parse import urlsplit

log = logging.getLogger("warehouse.alerts")


@dataclass(frozen=True)
class Alert:
    kind: str  # e.g. freshness
    state: str  # firing | resolved
    summary: str
    details: dict


class Notifier(Protocol):
    def send(self, alert: Alert) -> None: ...


class LogNotifier:
    def send(self, alert: Alert) -> None:
        level = logging.ERROR if alert.state == "firing" else logging.INFO
        log.log(level, f"[{alert.kind} {alert.state}] {alert.summary}")


class WebhookNotifier:
    """POSTs the alert as JSON (works with Slack-style incoming webhooks via the `text` field)."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout

    def send(self, alert: Alert) -> None:
        body = json.dumps({"text": f"[{alert.kind} {alert.state}] {alert.summary}", **asdict(alert)},
                          default=str).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (urllib.error.URLError, TimeoutError) as exc:  # a dead webhook must not hide the alert
            log.error(f"alert webhook {redacted_url(self.url)} failed ({exc}); the alert was: {alert.summary}")


def redacted_url(url: str) -> str:
    """A webhook URL as it may be printed: its scheme and host; the path and query are its secret
    (a Slack webhook's path is the credential) and so are a user and password."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/***"


class Notifiers:
    def __init__(self, *notifiers: Notifier):
        self.notifiers = notifiers

    def send(self, alert: Alert) -> None:
        for notifier in self.notifiers:
            notifier.send(alert)


def notifiers_from_settings(webhook_url: str | None) -> Notifiers:
    return Notifiers(LogNotifier(), *([WebhookNotifier(webhook_url)] if webhook_url else []))
