# One image for the three Dagster services in docker-compose.yml: code location, webserver, daemon.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /opt/dagster/app
COPY . .
# editable install: the code location finds dbt_project/ and expectations/ beside its source
RUN pip install -e . \
    && python -c "from orchestration.dbt_project import prepare_manifest; prepare_manifest(refresh=True)" \
    && mkdir -p "$DAGSTER_HOME" && cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

EXPOSE 3000 4000
