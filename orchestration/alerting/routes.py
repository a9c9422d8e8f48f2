"""Which channels an alert goes to: the first matching route of a small YAML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestration.settings import SettingError

KINDS = ("raw_freshness", "marts_freshness", "failed_run", "failed_check", "budget", "anomaly", "insight")
SEVERITIES = ("critical", "error", "warning", "info")
CHANNELS = ("webhook", "slack", "email")


@dataclass(frozen=True)
class Route:
    kinds: frozenset[str]  # empty: every kind
    severities: frozenset[str]  # empty: every severity
    channels: tuple[str, ...]

    def matches(self, kind: str, severity: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (not self.severities or severity in self.severities)


@dataclass(frozen=True)
class Routes:
    routes: tuple[Route, ...]

    def channels(self, kind: str, severity: str, configured: tuple[str, ...]) -> tuple[str, ...]:
        for route in self.routes:
            if route.matches(kind, severity):
                return tuple(c for c in route.channels if c in configured)
        return ()

    @classmethod
    def load(cls, path: Path) -> Routes:
        where = f"WAREHOUSE_ALERT_ROUTES ({path})"
        try:
            document = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise SettingError(f"{where} cannot be read ({exc.strerror}): point it at a routes file") from None
        except yaml.YAMLError as exc:
            raise SettingError(f"{where} is not YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(document, dict) or not isinstance(document.get("routes"), list):
            raise SettingError(f"{where} needs a list under `routes:` (see orchestration/alerting/routes.yaml)")
        routes = []
        for n, entry in enumerate(document["routes"], 1):
            if not isinstance(entry, dict):
                raise SettingError(f"{where}: route {n} is not a mapping of kinds, severities and channels")
            fields = {"kinds": KINDS, "severities": SEVERITIES, "channels": CHANNELS}
            values = {}
            for field, allowed in fields.items():
                given = entry.get(field) or []
                if not isinstance(given, list) or any(v not in allowed for v in given):
                    raise SettingError(f"{where}: route {n} has {field} {given!r}; allowed: {', '.join(allowed)}")
                values[field] = given
            unknown = set(entry) - set(fields)
            if unknown:
                raise SettingError(f"{where}: route {n} has unknown keys {sorted(unknown)}; allowed: kinds, "
                                   "severities, channels")
            routes.append(Route(frozenset(values["kinds"]), frozenset(values["severities"]),
                                tuple(values["channels"])))
        return cls(tuple(routes))
