"""`warehouse dashboard`: the dashboard over HTTP. Every request logs in as the finance login (read-only; it
reads the money, which the BI login does not), runs the spec's queries for the org and window asked for
(?org=...&days=7|30|90), and draws the page; plotly.js is served from the Plotly package (no internet)."""

from __future__ import annotations

import functools
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import psycopg2

from orchestration.dashboard.page import WINDOWS, load, orgs, render, run, window


def login_dsn(dsn: str, user: str, password: str | None) -> str:
    """The warehouse's URL, logged in as `user` instead."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


class Dashboard:
    def __init__(self, spec_path: Path, dsn: str, login: str):
        self.spec_path, self.dsn, self.login = spec_path, dsn, login

    def page(self, query: dict[str, list[str]]) -> tuple[int, str]:
        """(HTTP status, HTML) for a request's query string."""
        spec = load(self.spec_path)  # read on every request: an edited spec shows on the next reload
        org = (query.get("org") or [""])[0] or None
        days_text = (query.get("days") or ["30"])[0]
        if days_text not in {str(d) for d in WINDOWS}:
            return 400, _message(f"days={days_text} is not one of {', '.join(map(str, WINDOWS))}")
        try:
            conn = psycopg2.connect(self.dsn, connect_timeout=10)
        except psycopg2.OperationalError as exc:
            return 503, _message(f"cannot log in as {self.login}: {str(exc).strip().splitlines()[0]}; run "
                                 "'warehouse access' with WAREHOUSE_FINANCE_PASSWORD set to create the login")
        try:
            conn.set_session(readonly=True)
            with conn.cursor() as cur:
                known = orgs(cur)
                if org is not None and org not in known:
                    return 400, _message(f"org={org} has no usage in the marts (orgs: {', '.join(known)})")
                span = window(cur, int(days_text))
                if span is None:
                    return 200, _message("nothing is published in schema marts yet: run 'warehouse load' or the demo")
                frames = run(cur, spec, org, *span)
            return 200, render(spec, frames, org, int(days_text), *span, known, self.login)
        except psycopg2.Error as exc:
            return 500, _message(f"a query of {self.spec_path.name} failed as {self.login}: "
                                 f"{str(exc).strip().splitlines()[0]}")
        finally:
            conn.close()


def _message(text: str) -> str:
    from html import escape

    return f"<!doctype html><html><body><p id='message'>{escape(text)}</p></body></html>"


@functools.cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def server(dashboard: Dashboard, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server of the dashboard (call serve_forever on it; port 0 picks a free one)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/plotly.min.js":
                status, body, kind = 200, _plotly_js(), "application/javascript"
            elif url.path == "/":
                status, html = dashboard.page(parse_qs(url.query))
                body, kind = html.encode(), "text/html; charset=utf-8"
            else:
                status, body, kind = 404, _message(f"no page {url.path}: the dashboard is at /").encode(), "text/html"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)
