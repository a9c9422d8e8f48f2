"""Alerts on-call can act on.

conditions.py says what is wrong right now, kind by kind; outbox.py opens an alert when a condition
appears and resolves it when it goes, and keeps every message in audit.alert_deliveries until its
channel took it; channels.py sends (webhook, Slack, e-mail); routes.py says which alert goes where.
"""
