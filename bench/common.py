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


def cold_import(function: str, module: str = "app", rounds: int = 5) -> tuple[float, list[str]]:
    """Best of `rounds` fresh interpreters importing `module` in functions/<function> with the core layer on the
    path (bytecode compiled beforehand, as a warm disk cache would have it), and which of numpy/scipy/sklearn
    that import loaded."""
    cwd = ROOT / "functions" / function
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "layers" / "core"), str(cwd)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core"), "PYTHONDONTWRITEBYTECODE": "1"}
    code = _COLD_IMPORT.format(module=module, heavy=HEAVY_MODULES)
    best, heavy = float("inf"), set()
    for _ in range(rounds):
        seconds, loaded = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                                         text=True, check=True).stdout.split(" ")
        best = min(best, float(seconds))
        heavy.update(filter(None, loaded.strip().split(",")))
    return best, sorted(heavy)
