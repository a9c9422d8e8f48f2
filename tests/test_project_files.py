"""The files a user reads or deploys stay true: README and docs tables, commands, links, compose file, CI."""

import re
from pathlib import Path

import yaml

from ingestion.contract import FIELDS
from ingestion.sources import parse_spec
from orchestration.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}


def test_the_settings_page_lists_every_setting_with_its_default():
    page = DOCS["settings.md"]
    for s in SETTINGS:
        assert f"| `{s.name}` | {s.default} | {s.help} |" in page, s.name
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", page, re.M))
    assert documented == {s.name for s in SETTINGS}


def test_every_suite_and_its_thresholds_are_documented_and_wired():
    import json

    from orchestration.defs.quality import GATES, contract_parameters
    from orchestration.settings import Settings

    suites = {p.stem for p in (ROOT / "expectations").glob("*.json")}
    assert suites == {g.suite for g in GATES}  # every suite file runs as a check, and only those
    for gate in GATES:
        assert f"| `{gate.suite}` suite | `{gate.asset.to_user_string()}` |" in DOCS["quality-gates.md"]
        spec = json.loads((ROOT / "expectations" / f"{gate.suite}.json").read_text())
        assert all(e["severity"] in ("critical", "warning") for e in spec["expectations"]), gate.suite
        wanted = set(re.findall(r'"\$PARAMETER": "(\w+)"', json.dumps(spec)))
        settings = set(gate.parameters(Settings.from_env()))
        assert wanted - set(contract_parameters()) == settings, gate.suite  # each threshold is filled
        for name in settings:  # the contract's limits are in its own table
            assert f"| `{name}` |" in DOCS["quality-gates.md"]


def test_the_raw_suite_judges_contract_fields_by_the_contracts_numbers():
    """A row the loader accepts must pass the raw gate: every range or value set the suite puts on a
    contract field is a parameter filled from ingestion/contract.py, never a number of its own."""
    import json

    fields = {f.name for f in FIELDS}
    spec = json.loads((ROOT / "expectations" / "raw_usage_events.json").read_text())
    judged = 0
    for e in spec["expectations"]:
        kwargs = e["kwargs"]
        if kwargs.get("column") not in fields or e["severity"] != "critical":
            continue
        for key in ("min_value", "max_value", "value_set"):
            if key in kwargs:
                judged += 1
                assert isinstance(kwargs[key], dict) and "$PARAMETER" in kwargs[key], (kwargs["column"], key)
    assert judged >= 15


def test_the_raw_suite_expects_exactly_the_contract_columns():
    import json

    from ingestion.schema import LINEAGE_COLUMNS

    spec = json.loads((ROOT / "expectations" / "raw_usage_events.json").read_text())
    [columns] = [e["kwargs"]["column_set"] for e in spec["expectations"]
                 if e["type"] == "expect_table_columns_to_match_set"]
    assert columns == [f.name for f in FIELDS] + [n for n, _ in LINEAGE_COLUMNS] + ["hours_before_landing"]


def test_the_contract_page_is_the_contract_in_code():
    for f in FIELDS:
        assert (f"| `{f.name}` | {f.kind} | {'yes' if f.required else ''} | {f.limits} | {f.description} |"
                in DOCS["contract.md"])


def test_the_two_readme_commands_are_the_ones_ci_runs():
    assert "python3 dev.py demo" in README and "python3 dev.py test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 dev.py test" in ci
    assert "WAREHOUSE_DSN=postgresql://postgres@127.0.0.1:5432/" in ci  # the TCP server, too


def test_compose_runs_postgres_webserver_daemon_and_the_code_location():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "code_location", "webserver", "daemon", "dashboard"}
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "orchestration.definitions" in services["code_location"]["command"]
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        assert command[command.index("--grpc-host") + 1] == "code_location"
        assert set(services[name]["depends_on"]) == {"postgres", "code_location"}
    assert services["dashboard"]["command"][-1].startswith("warehouse access && warehouse dashboard --host 0.0.0.0")
    for name in ("code_location", "webserver", "daemon", "dashboard"):
        env = services[name]["environment"]
        assert env["DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")
        assert env["WAREHOUSE_DSN"].startswith("postgresql://")
    assert "cp dagster.yaml" in (ROOT / "Dockerfile").read_text()


def test_compose_requires_the_database_password_and_keeps_the_ui_on_this_machine():
    text = (ROOT / "docker-compose.yml").read_text()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD([^}]*)\}", text)
    assert len(uses) == 3 and all(u == ":?set POSTGRES_PASSWORD, the database password" for u in uses), uses
    assert "postgres:postgres@" not in text
    compose = yaml.safe_load(text)
    [port] = compose["services"]["webserver"]["ports"]
    assert port == "${WAREHOUSE_UI_BIND:-127.0.0.1}:3000:3000"
    assert compose["services"]["dashboard"]["ports"] == ["${WAREHOUSE_UI_BIND:-127.0.0.1}:8590:8590"]
    assert all("ports" not in service for name, service in compose["services"].items()
               if name not in ("webserver", "dashboard"))


def test_dagster_yaml_keeps_storage_in_postgres():
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}


def test_workspace_points_at_the_definitions_module():
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "orchestration.definitions"


def test_the_source_spec_examples_are_valid_specs():
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOCS["sources.md"], re.S)]
    specs = [b for b in blocks if "format" in b]
    assert [parse_spec(s).format for s in specs] == ["csv", "postgres"]


def test_the_funnel_example_is_the_projects_funnel():
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOCS["marts.md"], re.S)]
    [example] = [b for b in blocks if "vars" in b]
    project = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())
    assert example["vars"]["funnels"] == project["vars"]["funnels"]


def test_the_code_imports_one_way():
    """No circle among the project's modules, counting imports inside functions: each stage builds on the
    ones before it (ingestion on reference data and contracts, orchestration on both), never back."""
    import ast

    packages = ("ingestion", "orchestration", "expectations", "reference", "samples")
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for package in packages for p in (ROOT / package).rglob("*.py")}
    imports: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        imports[name] = {m for m in found if m in modules and m != name}

    def circle_from(start: str, path: list[str]) -> list[str] | None:
        for target in sorted(imports[start]):
            if target in path:
                return [*path[path.index(target):], target]
            if (found := circle_from(target, [*path, target])) is not None:
                return found
        return None

    circles = [c for name in sorted(modules) if (c := circle_from(name, [name]))]
    assert not circles, " -> ".join(circles[0])


def test_the_readme_is_a_short_guide_whose_folder_table_is_the_repository():
    assert len(README.encode()) < 10_000
    table = README.split("## Where things are", 1)[1].split("\n\n", 2)[1]
    listed = {name.strip("`/") for row in re.findall(r"^\| ([^|]+) \|", table, re.M)
              for name in row.split(", ") if name.startswith("`")}
    assert all((ROOT / name).is_dir() for name in listed), listed
    code = {p.name for p in ROOT.iterdir() if p.is_dir() and (any(p.glob("*.py")) or p.name in ("dbt_project", "docs"))
            and not p.name.startswith(".")}
    assert code <= listed, code - listed  # every folder that holds code is in the table


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_and_the_docs_leads_somewhere():
    pages = {ROOT / "README.md": README, **{ROOT / "docs" / name: text for name, text in DOCS.items()}}
    anchors = {path: {_anchor(h) for h in re.findall(r"^#+ (.*)$", text, re.M)} for path, text in pages.items()}
    assert all(DOCS[name].startswith("# ") for name in DOCS)
    linked = {p.name for p in pages if p.parent.name == "docs"} & set(re.findall(r"\(docs/([\w.-]+\.md)\)", README))
    assert linked == set(DOCS), set(DOCS) - linked  # every page is reachable from the README
    for path, text in pages.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            assert resolved.exists(), f"{path.name}: {target}"
            if anchor:
                assert anchor in anchors.get(resolved, set()), f"{path.name}: {target}"
    from orchestration.alerting.conditions import RUNBOOK_SECTION  # the link every alert carries

    file, anchor = RUNBOOK_SECTION.split("#")
    assert anchor in anchors[ROOT / file]


def test_every_documented_command_is_run_by_ci_or_a_test():
    ci = (ROOT / ".ci" / "run").read_text() + (ROOT / ".ci" / "ui_smoke.py").read_text()
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    covered = set(re.findall(r"warehouse\"?,? \"?([a-z]+)", ci)) | set(re.findall(r'main\(\["([a-z]+)"', tests))
    covered.add("generate")  # tests/test_synthetic.py runs every documented `warehouse generate` command
    documented = set()
    for text in [README, *DOCS.values()]:
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
            documented |= set(re.findall(r"\.venv/bin/warehouse ([a-z]+)", block))
    assert documented and documented <= covered, documented - covered


def test_every_file_the_readme_and_the_docs_name_exists():
    text = README + "".join(DOCS.values())
    named = set(re.findall(r"\b((?:ingestion|orchestration|reference|samples|expectations|tests|bench|dbt_project|"
                           r"sources|\.ci)/[\w./-]+\.(?:py|json|yml|yaml|sql|md|csv|j2))", text))
    named.discard("sources/gateway.yaml")  # a spec's name in an example error message
    assert len(named) > 30 and all((ROOT / name).exists() for name in named), sorted(
        n for n in named if not (ROOT / n).exists())
