import dagster as dg

from orchestration.dbt_project import dbt_resource
from orchestration.resources import WarehouseResource

defs = dg.Definitions(resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()})
