"""Dagster resources: the warehouse database, resolved from settings when a run starts."""

from __future__ import annotations

import multiprocessing

import dagster as dg
from pydantic import PrivateAttr

from ingestion.lifeline import die_with_parent
from orchestration.database import connect, dbt_env, warehouse_dsn
from orchestration.settings import Settings


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse PostgreSQL: WAREHOUSE_DSN, or the embedded server when it is unset."""

    dsn: str | None = None  # tests pin a DSN; normally read from WAREHOUSE_DSN at run time
    _resolved: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # a step in a process of its own (the multiprocess executor) dies with its run's process: a
        # killed run must not leave a step loading files or running dbt
        parent = multiprocessing.parent_process()
        if parent is not None and parent.pid is not None:
            die_with_parent(parent.pid)

    @property
    def settings(self) -> Settings:
        return Settings.from_env()

    def get_dsn(self) -> str:
        if self._resolved is None:
            self._resolved = self.dsn or warehouse_dsn(self.settings)
        return self._resolved

    def connect(self):
        return connect(self.get_dsn())

    def dbt_env(self) -> dict[str, str]:
        return dbt_env(self.get_dsn())
