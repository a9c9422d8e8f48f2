"""The usage dashboard BI users open: panels defined as code (dashboards/*.yml: SQL on the published marts
and how to draw it), rendered with Plotly and Jinja on every request, logged in as the read-only finance
login. page.py reads and draws; server.py serves it (`warehouse dashboard`)."""
