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


def _requirements(path: Path) -> list[str]:
    from packaging.requirements import Requirement

    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line).name for line in lines if line]


def _distributions(names: list[str]) -> set[str]:
    """The distributions `names`, with everything they depend on (in this environment)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    todo = list(names)
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


# Lambda's Python runtime is AWS's runtime interface client: before it imports a handler, `python -m awslambdaric`
# has loaded its own modules (logging, json, decimal, simplejson, ...), which a handler's import then finds loaded.
RUNTIME = "awslambdaric"
AFTER_RUNTIME = f"{RUNTIME}.__main__ | "


def runtime_available() -> bool:
    """Whether the runtime interface client is installed here (bench/requirements.txt: Linux wheels only)."""
    from importlib import metadata

    try:
        metadata.distribution(RUNTIME)
    except metadata.PackageNotFoundError:
        return False
    return True


def _copy_distributions(names: set[str], site: Path) -> None:
    from importlib import metadata
    import shutil

    for name in sorted(names):
        dist = metadata.distribution(name)
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # console scripts outside site-packages; bytecode is compiled by the caller
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), target)


def lambda_layout(function: str, layers: tuple[str, ...] = ("core",), runtime: bool = False,
                  bytecode: bool = True) -> Path:
    """The function as Lambda loads it, in a new temporary directory: its code in task/, and in opt/python the
    layers' content (the wattprint package, and the distributions each layer's requirements.txt pins, with their
    dependencies, copied from this environment: the same versions, built for this machine), byte-compiled unless
    `bytecode` is false (a layer built without the target's Python: see layers/core/Makefile).
    With `runtime`, var/runtime holds the runtime interface client (see RUNTIME) and what it depends on, compiled
    (the runtime ships its bytecode)."""
    import shutil

    root = Path(tempfile.mkdtemp(prefix=f"wattprint-{function}-layout-"))
    shutil.copytree(ROOT / "functions" / function, root / "task", ignore=shutil.ignore_patterns("__pycache__"))
    site = root / "opt" / "python"
    shutil.copytree(ROOT / "layers" / "core" / "wattprint", site / "wattprint",
                    ignore=shutil.ignore_patterns("__pycache__"))
    pinned = [name for layer in layers for name in _requirements(ROOT / "layers" / layer / "requirements.txt")]
    _copy_distributions(_distributions(pinned), site)
    if runtime:
        _copy_distributions(_distributions([RUNTIME]), root / "var" / "runtime")
    compile_dirs = [root] if bytecode else [root / "var"] if runtime else []
    for folder in compile_dirs:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(folder)], check=True,
                       capture_output=True)
    return root


def cold_import(function: str, module: str = "app", rounds: int = 5, layers: tuple[str, ...] = ("core",),
                layout: str = "lambda") -> tuple[float, list[str]]:
    """Best of `rounds` fresh interpreters importing `module` (see `cold_imports`)."""
    return cold_imports(function, (module,), rounds, layers, layout)[module]


def cold_imports(function: str, modules: tuple[str, ...] = ("app",), rounds: int = 5,
                 layers: tuple[str, ...] = ("core",), layout: str = "lambda") -> dict[str, tuple[float, list[str]]]:
    """For each of `modules` (an import list such as "numpy, sklearn.cluster"), the best of `rounds` fresh
    interpreters importing it from functions/<function>'s folder, with bytecode compiled beforehand (as the core
    layer ships it when built where python3.13 runs), and which of numpy/scipy/sklearn that import loaded. The modules take turns within each round,
    so a slow minute on a noisy machine hits them all alike.

    layout "lambda": only the function and its layers on the path (`lambda_layout`), interpreter started with
    -I -S so no other site-packages is seen — as in Lambda, where /var/task and /opt/python hold just that.
    An entry "first | then" imports `first` untimed, then times the import of `then`: AFTER_RUNTIME + "app" is what
    importing the handler adds to a real cold start, after the runtime interface client's own imports.
    layout "lambda-source": the same without the function's and the layers' bytecode, in an interpreter that writes
    none (-B, as /var/task and /opt are read-only): every cold start compiles them.
    layout "dev": the function with layers/core on PYTHONPATH in this virtualenv, with all its development
    packages (for comparison).
    """
    if layout in ("lambda", "lambda-source"):
        runtime = any(" | " in module for module in modules)
        root = lambda_layout(function, layers, runtime=runtime, bytecode=layout == "lambda")
        prefix = f"import sys; sys.path[:0] = [{str(root / 'task')!r}, {str(root / 'opt' / 'python')!r}]; "
        if runtime:  # last on the path, as /var/runtime is in Lambda's Python 3.12+ runtimes
            prefix += f"sys.path.append({str(root / 'var' / 'runtime')!r}); "
        interpreter = [sys.executable, "-I", "-S"] + (["-B"] if layout == "lambda-source" else [])
        cwd, env = root / "task", {}
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
                first, _, then = module.rpartition(" | ")
                code = prefix + (f"import {first}; " if first else "") + _COLD_IMPORT.format(module=then,
                                                                                            heavy=HEAVY_MODULES)
                seconds, loaded = subprocess.run([*interpreter, "-c", code], cwd=cwd, env=env, capture_output=True,
                                                 text=True, check=True).stdout.split(" ")
                best[module] = min(best[module], float(seconds))
                heavy[module].update(filter(None, loaded.strip().split(",")))
    finally:
        if root is not None:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    return {module: (best[module], sorted(heavy[module])) for module in modules}
