"""The package's shape (issue 13), checked from the source: who may import whom, and who reads the environment.

* the base (the top-level modules of `wattprint`) imports no capability (a sub-package);
* a capability reaches another only through its `service` module, except the two pure vocabulary modules below;
* a handler (functions/<name>/app.py) imports the base, the dashboard, and capabilities' `service` modules only;
* nothing but wattprint/settings.py reads the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "wattprint"
FUNCTIONS = sorted(p.parent for p in (ROOT / "functions").glob("*/app.py"))
# Pure definitions of what an event and a clustering feature are (no I/O, no imports of their own capability's
# other modules). The report names events' fields and clusters' centres with them; importing them through
# ingest.service or clustering.service would load those capabilities (their parser, numpy) into its cold start.
VOCABULARY = {"wattprint.ingest.record", "wattprint.clustering.features"}
SUB_PACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def imported(name: str, path: Path) -> set[str]:
    """Every wattprint module `path` (the module `name`) imports, resolved, at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from X import y` imports X.y when y is a module, else X itself.
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                    (PACKAGE.parent / Path(*candidate.split(".")) / "__init__.py").exists()
                found.add(candidate if is_module else base)
    return {m for m in found if m == "wattprint" or m.startswith("wattprint.")}


def capability(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in SUB_PACKAGES) else None


def test_the_shape_is_there():
    assert {"ingest", "clustering", "report", "live", "dashboard"} <= set(SUB_PACKAGES)
    for name in ("ingest", "clustering", "report", "live"):
        assert (PACKAGE / name / "service.py").exists(), name
    assert len(FUNCTIONS) >= 9


def violations(name: str, targets: set[str]) -> list[str]:
    own, out = capability(name), []
    for target in sorted(targets):
        other = capability(target)
        if other is None or other == own:
            continue
        if own is None:
            out.append(f"{name} is base and imports the capability module {target}")
        elif target != f"wattprint.{other}.service" and target not in VOCABULARY:
            out.append(f"{name} reaches into {target}; use wattprint.{other}.service")
    return out


@pytest.mark.parametrize("name, path", modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_follow_the_layers(name, path):
    assert violations(name, imported(name, path)) == []


@pytest.mark.parametrize("folder", FUNCTIONS, ids=lambda p: p.name)
def test_handlers_call_services(folder):
    for target in imported(f"functions.{folder.name}.app", folder / "app.py"):
        other = capability(target)
        assert other is None or other == "dashboard" or target == f"wattprint.{other}.service", \
            f"functions/{folder.name}/app.py imports {target}; a handler calls a capability's service"


def test_the_checks_can_fail(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from ..ingest import parser\nfrom ..live.service import events_stored\nfrom . import queries\n"
                     "import wattprint.clustering.fit\n\ndef late():\n    from .. import db\n")
    targets = imported("wattprint.report.probe", probe)
    assert targets == {"wattprint.ingest.parser", "wattprint.live.service", "wattprint.report.queries",
                       "wattprint.clustering.fit", "wattprint.db"}
    assert violations("wattprint.report.probe", targets) == [
        "wattprint.report.probe reaches into wattprint.clustering.fit; use wattprint.clustering.service",
        "wattprint.report.probe reaches into wattprint.ingest.parser; use wattprint.ingest.service"]
    assert violations("wattprint.http", {"wattprint.live.service", "wattprint.errors"}) == [
        "wattprint.http is base and imports the capability module wattprint.live.service"]


ENVIRONMENT_READS = ("os.environ", "os.getenv", "environ.get", "environ[")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")) + [f / "app.py" for f in FUNCTIONS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_settings_reads_the_environment(path):
    if path == PACKAGE / "settings.py":
        return
    text = path.read_text()
    assert not any(read in text for read in ENVIRONMENT_READS), f"{path.relative_to(ROOT)} reads the environment"
    tree = ast.parse(text)
    assert not any(isinstance(node, ast.Name) and node.id == "environ" for node in ast.walk(tree))
