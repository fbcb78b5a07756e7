"""Docs that cannot drift: README.md's code layout names every module of the core package and every function
folder, docs/deploy.md's environment table every variable settings.py reads; neither names one that is gone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "wattprint"
TICKED = re.compile(r"`([^`]+)`")


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else len(text)]


def table_after(text: str, marker: str) -> list[list[str]]:
    """The cells of the first Markdown table after `marker`, header and rule left out."""
    rows = []
    for line in text[text.index(marker):].splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[2:]


def layout() -> str:
    return section((ROOT / "README.md").read_text(), "## Code layout")


def documented_modules() -> set[str]:
    named = set()
    for path_cell, what in table_after(layout(), "The core package"):
        for path in TICKED.findall(path_cell):
            if path.endswith("/"):
                named.add(path + "__init__.py")
                named |= {path + name for name in TICKED.findall(what) if name.endswith(".py")}
            else:
                named.add(path)
    return named


def test_readme_names_every_module_of_the_core_package():
    actual = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    documented = documented_modules()
    assert {"db.py", "ingest/parser.py", "clustering/__init__.py"} <= documented  # the table is being read
    assert sorted(actual - documented) == [], "modules README.md's code layout does not name"
    assert sorted(documented - actual) == [], "modules README.md's code layout names that do not exist"


def test_readme_names_every_function_folder():
    actual = {f"functions/{p.parent.name}/" for p in (ROOT / "functions").glob("*/app.py")}
    documented = {path for cell, _ in table_after(layout(), "Lambda functions") for path in TICKED.findall(cell)}
    assert "functions/ingest/" in documented
    assert sorted(actual - documented) == [], "function folders README.md does not name"
    assert sorted(documented - actual) == [], "function folders README.md names that do not exist"
    for folder in actual:  # each one builds like the others
        assert (ROOT / folder / "Makefile").exists(), folder


def settings_variables() -> set[str]:
    """The variables settings.py reads: env.get("X"...) and env["X"], plus the AWS_ENDPOINT_URL family it scans."""
    tree = ast.parse((PACKAGE / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "env" and node.args:
            key = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "env":
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
        elif key is not None:
            raise AssertionError(f"settings.py reads a variable whose name is computed (line {node.lineno}): "
                                 "name it, or teach this test the family")
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ENDPOINT_PREFIX" for t in node.targets):
            names |= {node.value.value, node.value.value + "_<SERVICE>"}
    return names


def test_deploy_doc_names_every_environment_variable():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    documented = {name for cell, _ in table_after(doc, "| Variable | Value in AWS |") for name in TICKED.findall(cell)}
    read = settings_variables()
    assert {"DATABASE_URL", "CLUSTER_THRESHOLD", "LIVE_QUEUE_URL", "AWS_ENDPOINT_URL_<SERVICE>"} <= read
    assert sorted(read - documented) == [], "variables settings.py reads that docs/deploy.md does not name"
    assert sorted(documented - read) == [], "variables docs/deploy.md names that settings.py does not read"
