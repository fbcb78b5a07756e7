"""The local stack warms the clustering function at start (issue 18): what it preloads is everything heavy that
the cluster handler imports, and its pollers initialise their function before the first message."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "scipy", "sklearn")


def test_the_preload_is_all_the_heavy_imports_of_the_cluster_handler():
    from local.stack import PRELOAD

    code = ("import sys; sys.path[:0] = ['layers/core', 'functions/cluster', '.']; "
            f"import {', '.join(PRELOAD)}; before = set(sys.modules); import app; "
            f"print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_poller_initialises_its_function_before_polling(local_stack):
    import threading

    assert local_stack.preloaded.wait(120) and local_stack.preload_seconds is not None
    functions = next(thing for kind, thing in local_stack.started if kind == "poller").functions
    pollers = {thing.trigger.function: thing for kind, thing in local_stack.started if kind == "poller"}
    assert "ClusterFunction" in pollers

    def initialised():
        return ("ClusterFunction", pollers["ClusterFunction"].ident) in functions._handlers

    done = threading.Event()
    for _ in range(1200):  # its handler module is imported in its own thread, with no message sent
        if initialised() or done.wait(0.1):
            break
    assert initialised()
