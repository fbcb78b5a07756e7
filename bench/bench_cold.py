"""What X-Ray tracing (Powertools Tracer, aws-xray-sdk) adds to a cold start of an API function: the ingest handler
in Lambda's layout, in fresh interpreters, with tracing on and off (issue 18)."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from collections import defaultdict

from .common import ROOT, lambda_layout

ROUNDS = 15
# Timed in one fresh interpreter: the handler's import (Lambda's init), then its first invocation (where
# observability.handler makes the tracer, and the X-Ray SDK is imported by the first segment), then what wattprint.aws.client does before it
# makes the first AWS client (an SQS send: a dashboard connected, a threshold crossed): patch botocore when tracing
# is on. The client itself is not timed: boto3 is the runtime's, not in the layout.
_PHASES = """
import sys, time, json
class Context:  # what Powertools reads of Lambda's context object
    function_name, function_version, memory_limit_in_mb = "IngestFunction", "$LATEST", 512
    invoked_function_arn, aws_request_id = "arn:aws:lambda:us-east-1:000000000000:function:IngestFunction", "cold"
    log_group_name = log_stream_name = "cold"
    def get_remaining_time_in_millis(self):
        return 29000
event = json.load(open("event.json"))
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
{eager}
answer = app.handler(event, Context())
t2 = time.perf_counter()
from wattprint import observability
observability.trace_aws_calls()
t3 = time.perf_counter()
assert answer["statusCode"] == 415, answer
print(json.dumps([t1 - t0, t2 - t1, t3 - t2]))
"""
# The first invocation: a body the handler refuses before any database call (415), so that what is timed is the
# handler's own path through Powertools and, with tracing on, the X-Ray SDK's first segment.
_EVENT_HEADERS = {"Content-Type": "application/xml"}
# off: POWERTOOLS_TRACE_DISABLED=true; on: as shipped (botocore patched with the first AWS client); eager: as before
# this measurement, botocore patched when the tracer was made.
VARIANTS = {"off": ("true", ""), "on": ("false", ""),
            "eager": ("false", "from wattprint import observability; observability.tracer().patch(['botocore'])")}


def _env(root, disabled: str) -> dict:
    return {"LAMBDA_TASK_ROOT": str(root / "task"), "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            "POWERTOOLS_TRACE_DISABLED": disabled, "POWERTOOLS_METRICS_DISABLED": "true"}


def _interpreter(root) -> list[str]:
    return [sys.executable, "-I", "-S", "-c",
            f"import sys; sys.path[:0] = [{str(root / 'task')!r}, {str(root / 'opt' / 'python')!r}]; "]


def _phases(root) -> dict[str, list[list[float]]]:
    found = defaultdict(list)
    for _ in range(ROUNDS):
        for name, (disabled, eager) in VARIANTS.items():  # taking turns: a slow minute hits every variant
            command = _interpreter(root)
            command[-1] += _PHASES.format(eager=eager)
            out = subprocess.run(command, cwd=root / "task", env=_env(root, disabled), capture_output=True,
                                 text=True, check=True)
            found[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return found


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)")


def _tracer_imports(root) -> list[tuple[str, float]]:
    """`python -X importtime`: the top-level packages the tracer's setup imports (eager variant), by self time."""
    command = _interpreter(root)
    command[-1] += ("import app; print('MARK', file=sys.stderr, flush=True); from wattprint import observability; "
                    "observability.tracer().patch(['botocore'])")
    command.insert(1, "-X")
    command.insert(2, "importtime")
    out = subprocess.run(command, cwd=root / "task", env=_env(root, "false"), capture_output=True, text=True,
                         check=True)
    by_package = defaultdict(float)
    for line in out.stderr.split("MARK", 1)[1].splitlines():
        found = _IMPORT_LINE.match(line)
        if found:
            by_package[found.group(3).split(".")[0]] += int(found.group(1)) / 1e6
    return sorted(by_package.items(), key=lambda item: -item[1])


def run() -> dict:
    import shutil

    root = lambda_layout("ingest")
    event = json.loads((ROOT / "events" / "ingest-text.json").read_text())
    event["headers"] = {**(event.get("headers") or {}), **_EVENT_HEADERS}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    (root / "task" / "event.json").write_text(json.dumps(event))
    try:
        found = _phases(root)
        imports = _tracer_imports(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def median(name: str, phase: int) -> float:
        return statistics.median(sample[phase] for sample in found[name])

    # Per phase, not per sum: the import (the same code in every variant: the tracer is made at the first
    # invocation) varies most on a shared machine and would drown the differences.
    imported = statistics.median(sample[0] for samples in found.values() for sample in samples)
    first = {name: median(name, 1) for name in VARIANTS}
    patch = median("on", 2)
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    now, before = first["on"] - first["off"], first["eager"] - first["off"]
    return {"title": "Cold start with and without X-Ray tracing (ingest handler, Lambda's layout)", "rows": [
        {"metric": f"import of the handler module (every variant: no tracing at import; median of "
                   f"{ROUNDS * len(VARIANTS)})", "value": ms(imported)},
        {"metric": f"first invocation (a 415, no database call), tracing off / on (median of {ROUNDS} each)",
         "value": f"{ms(first['off'])} / {ms(first['on'])}: tracing adds {ms(now)} (the tracer, the X-Ray SDK's "
                  f"first segment); import + first invocation ×{(imported + first['on']) / (imported + first['off']):.2f}"},
        {"metric": "… tracing on, botocore patched when the tracer is made (as before this section was written)",
         "value": f"{ms(first['eager'])}: tracing added {ms(before)}; import + first invocation "
                  f"×{(imported + first['eager']) / (imported + first['off']):.2f}"},
        {"metric": "botocore patched at the first AWS client (wattprint.aws.client; an SQS send: a dashboard "
                   "connected, a threshold crossed), tracing on; the client itself not timed",
         "value": ms(patch)},
        {"metric": "what the tracer's setup imports, by package (`python -X importtime`, self time, one run)",
         "value": ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in imports[:4])},
    ], "notes": "Fresh `python -I -S` interpreters with only the ingest function's folder and the core layer's content "
                "on the path (bench.common.lambda_layout, byte-compiled), LAMBDA_TASK_ROOT set so that "
                "wattprint.settings.tracing_enabled() is true unless POWERTOOLS_TRACE_DISABLED=true; the three "
                "variants take turns in every round. No X-Ray daemon listens (AWS_XRAY_CONTEXT_MISSING="
                "IGNORE_ERROR): what is timed is importing and setting up the SDK, not sending segments (UDP, "
                "asynchronous in Lambda). Python here is 3.11 on x86_64; Lambda runs 3.13 on arm64."}


if __name__ == "__main__":
    for row in run()["rows"]:
        print(row)
