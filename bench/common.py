"""Helpers the benchmarks share: an embedded PostgreSQL with a migrated schema, timing statistics."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "core"), str(ROOT)]
warnings.filterwarnings("ignore", module="platformdirs")


@contextlib.contextmanager
def database(durable: bool = True):
    """A fresh embedded PostgreSQL (or DATABASE_URL's server), migrated; DATABASE_URL points the code at it."""
    from local.pg import EmbeddedPostgres, free_port
    from wattprint import db, migrate

    saved = os.environ.get("DATABASE_URL")
    pg = None
    if not saved:
        pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="wattprint-bench-")), free_port(), durable=durable)
        pg.start()
        os.environ["DATABASE_URL"] = pg.url
    db.reset()
    try:
        migrate.apply(db.connection())
        yield os.environ["DATABASE_URL"]
    finally:
        db.reset()
        if pg:
            pg.destroy()
            os.environ.pop("DATABASE_URL", None)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(samples):
    return statistics.median(samples)


HEAVY_MODULES = ("numpy", "scipy", "sklearn")
_COLD_IMPORT = ("import sys, time; t = time.perf_counter(); import {module}; t = time.perf_counter() - t; "
                "print(t, ','.join(m for m in {heavy!r} if m in sys.modules))")


def _distributions(requirements: Path) -> set[str]:
    """The distributions a layer's requirements.txt pins, with everything they depend on (in this environment)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    todo = [Requirement(line.split("#")[0]).name for line in requirements.read_text().splitlines()
            if line.split("#")[0].strip()]
    found = set()
    while todo:
        dist = metadata.distribution(todo.pop())
        name = dist.metadata["Name"].lower()
        if name in found:
            continue
        found.add(name)
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def lambda_layout(function: str, layers: tuple[str, ...] = ("core",)) -> Path:
    """The function as Lambda loads it, in a new temporary directory: its code in task/, and in opt/python the
    layers' content (the wattprint package, and the distributions each layer's requirements.txt pins, with their
    dependencies, copied from this environment: the same versions, built for this machine), byte-compiled."""
    import shutil
    from importlib import metadata

    root = Path(tempfile.mkdtemp(prefix=f"wattprint-{function}-layout-"))
    shutil.copytree(ROOT / "functions" / function, root / "task", ignore=shutil.ignore_patterns("__pycache__"))
    site = root / "opt" / "python"
    shutil.copytree(ROOT / "layers" / "core" / "wattprint", site / "wattprint",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in sorted(set().union(*(_distributions(ROOT / "layers" / layer / "requirements.txt") for layer in layers))):
        dist = metadata.distribution(name)
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # console scripts outside site-packages; bytecode is compiled below
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), target)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(root)], check=True, capture_output=True)
    return root


def cold_import(function: str, module: str = "app", rounds: int = 5, layers: tuple[str, ...] = ("core",),
                layout: str = "lambda") -> tuple[float, list[str]]:
    """Best of `rounds` fresh interpreters importing `module` (see `cold_imports`)."""
    return cold_imports(function, (module,), rounds, layers, layout)[module]


def cold_imports(function: str, modules: tuple[str, ...] = ("app",), rounds: int = 5,
                 layers: tuple[str, ...] = ("core",), layout: str = "lambda") -> dict[str, tuple[float, list[str]]]:
    """For each of `modules` (an import list such as "numpy, sklearn.cluster"), the best of `rounds` fresh
    interpreters importing it from functions/<function>'s folder, with bytecode compiled beforehand (as the built
    layers ship it), and which of numpy/scipy/sklearn that import loaded. The modules take turns within each round,
    so a slow minute on a noisy machine hits them all alike.

    layout "lambda": only the function and its layers on the path (`lambda_layout`), interpreter started with
    -I -S so no other site-packages is seen — as in Lambda, where /var/task and /opt/python hold just that.
    layout "dev": the function with layers/core on PYTHONPATH in this virtualenv, with all its development
    packages (for comparison).
    """
    if layout == "lambda":
        root = lambda_layout(function, layers)
        prefix = f"import sys; sys.path[:0] = [{str(root / 'task')!r}, {str(root / 'opt' / 'python')!r}]; "
        interpreter, cwd, env = [sys.executable, "-I", "-S"], root / "task", {}
    else:
        root, prefix = None, ""
        cwd = ROOT / "functions" / function
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "layers" / "core"), str(cwd)],
                       check=True, capture_output=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core"), "PYTHONDONTWRITEBYTECODE": "1"}
        interpreter = [sys.executable]
    best = {module: float("inf") for module in modules}
    heavy: dict[str, set] = {module: set() for module in modules}
    try:
        for _ in range(rounds):
            for module in modules:
                code = prefix + _COLD_IMPORT.format(module=module, heavy=HEAVY_MODULES)
                seconds, loaded = subprocess.run([*interpreter, "-c", code], cwd=cwd, env=env, capture_output=True,
                                                 text=True, check=True).stdout.split(" ")
                best[module] = min(best[module], float(seconds))
                heavy[module].update(filter(None, loaded.strip().split(",")))
    finally:
        if root is not None:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    return {module: (best[module], sorted(heavy[module])) for module in modules}
