"""Where alert messages leave: a JSON webhook, a Slack incoming webhook, e-mail over SMTP.

Each sender raises DeliveryError when its channel did not take the message (the outbox retries it);
the error never carries the URL's path or query, which are the webhook's secret.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email import policy
from email.message import EmailMessage
from urllib.parse import urlsplit

from orchestration.settings import Settings, Smtp

TIMEOUT_SECONDS = 10


class DeliveryError(RuntimeError):
    """The channel did not take the message; the text is safe to log."""


def redacted_url(url: str) -> str:
    """A webhook URL as it may be printed: its scheme and host; the path and query are its secret
    (a Slack webhook's path is the credential) and so are a user and password."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/***"


class WebhookSender:
    """POSTs the message as JSON; its `text` field is the one-line headline."""

    def __init__(self, url: str):
        self.url = url

    def announce(self, message: dict, attachment: tuple[str, bytes, str] | None = None) -> None:
        """A notice that is not an alert (the nightly report): the message as JSON, its link in the text."""
        self.send({**message, "text": f"{message['text']} {message['link']}"})

    def send(self, payload: dict) -> None:
        request = urllib.request.Request(self.url, data=json.dumps(payload, default=str).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook {redacted_url(self.url)} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"webhook {redacted_url(self.url)} unreachable ({reason})") from None


class SlackSender:
    """Posts to a Slack incoming webhook with the Slack SDK: a headline, the numbers, a link and the runbook."""

    def __init__(self, url: str):
        self.url = url

    def send(self, payload: dict) -> None:
        self.post(payload["text"], slack_blocks(payload))

    def announce(self, message: dict, attachment: tuple[str, bytes, str] | None = None) -> None:
        text = f"{message['text']}\n<{message['link']}|Open it>"
        self.post(message["text"], [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])

    def post(self, text: str, blocks: list[dict]) -> None:
        from slack_sdk.webhook import WebhookClient

        try:
            response = WebhookClient(self.url, timeout=TIMEOUT_SECONDS).send(text=text, blocks=blocks)
        except Exception as exc:  # the SDK raises urllib's errors as they come
            raise DeliveryError(f"Slack webhook {redacted_url(self.url)} unreachable "
                                f"({getattr(exc, 'reason', type(exc).__name__)})") from None
        if response.status_code != 200:
            raise DeliveryError(f"Slack webhook {redacted_url(self.url)} answered HTTP {response.status_code}: "
                                f"{response.body[:200]}")


def slack_blocks(payload: dict) -> list[dict]:
    values = "\n".join(f"*{k}*: {v}" for k, v in payload["values"].items() if v is not None)[:2900]
    since = f"since {payload['since'][:16]} UTC"
    if payload["duration_minutes"] is not None:
        since += f", resolved after {payload['duration_minutes']} min"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": payload["text"][:2900]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": values or "(no values)"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{since} · <{payload['link']}|open in Dagster>"},
                                         {"type": "mrkdwn", "text": payload["runbook"][:2900]}]},
    ]


class EmailSender:
    def __init__(self, smtp: Smtp):
        self.smtp = smtp

    def send(self, payload: dict) -> None:
        lines = [payload["summary"], "", *(f"{k}: {v}" for k, v in payload["values"].items()), "",
                 f"severity: {payload['severity']}", f"since: {payload['since']}",
                 *([f"resolved after: {payload['duration_minutes']} min"] if payload["duration_minutes"] is not None
                   else []),
                 f"environment: {payload['environment']}", f"open in Dagster: {payload['link']}",
                 f"what to do: {payload['runbook']}"]
        self.mail(payload["text"], "\n".join(lines))

    def announce(self, message: dict, attachment: tuple[str, bytes, str] | None = None) -> None:
        body = f"{message['text']}\n\nOpen it: {message['link']}" + ("\n(also attached)" if attachment else "")
        self.mail(message["text"], body, (attachment,) if attachment else ())

    def mail(self, subject: str, body: str, attachments: tuple[tuple[str, bytes, str], ...] = ()) -> None:
        """attachments: (file name, content, MIME subtype of text/ or application/)."""
        mail = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))  # a subject on one line
        mail["Subject"] = subject[:200]
        mail["From"] = self.smtp.sender
        mail["To"] = ", ".join(self.smtp.recipients)
        mail.set_content(body)
        for name, content, subtype in attachments:
            maintype = "text" if subtype in ("html", "csv") else "application"
            mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=TIMEOUT_SECONDS) as server:
                if self.smtp.starttls:
                    server.starttls()
                if self.smtp.user:
                    server.login(self.smtp.user, self.smtp.password or "")
                server.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.smtp.host}:{self.smtp.port} did not take the mail "
                                f"({type(exc).__name__}: {exc})"[:300]) from None


def senders(settings: Settings) -> dict[str, object]:
    """The configured channels' senders, by channel name."""
    out: dict[str, object] = {}
    if settings.alert_webhook_url:
        out["webhook"] = WebhookSender(settings.alert_webhook_url)
    if settings.slack_webhook_url:
        out["slack"] = SlackSender(settings.slack_webhook_url)
    if settings.smtp:
        out["email"] = EmailSender(settings.smtp)
    return out
