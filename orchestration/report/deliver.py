"""Send a rendered report through the alert channels: its headline and link (and, by e-mail, the page)."""

from __future__ import annotations

from orchestration.alerting.channels import DeliveryError
from orchestration.report.render import Report, ms, pct, usd


def link(report: Report, reports_url: str | None) -> str:
    if reports_url:
        return f"{reports_url.rstrip('/')}/{report.day.isoformat()}/index.html"
    return report.page.resolve().as_uri()


def headline(report: Report, environment: str) -> str:
    h = report.headline
    return (f"[{environment}] Nightly report for {report.day}: {usd(h['spend_usd'])} spent on {h['requests']:,} "
            f"requests, error rate {pct(h['error_rate'])}, p95 latency {ms(h['latency_p95_ms'])}; "
            f"{usd(h['month_to_date_usd'])} this month")


def send(report: Report, senders: dict[str, object], environment: str, reports_url: str | None) -> dict[str, str]:
    """Send to every configured channel; returns channel -> 'sent' or the error (the page stays on disk)."""
    text, url = headline(report, environment), link(report, reports_url)
    outcome = {}
    message = {"text": text, "kind": "nightly_report", "date": report.day.isoformat(), "environment": environment,
               "link": url, "figures": report.headline}
    page = (f"llm-usage-{report.day}.html", report.page.read_bytes(), "html")
    for channel, sender in senders.items():
        try:
            sender.announce(message, page)
            outcome[channel] = "sent"
        except DeliveryError as exc:
            outcome[channel] = str(exc)
    return outcome
