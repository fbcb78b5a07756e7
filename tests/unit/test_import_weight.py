"""What each function's handler loads when a cold Lambda imports it (the cold start pays for every module)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "scipy", "sklearn")


@pytest.mark.parametrize("function, must_not_load", [
    ("ingest", (*HEAVY, "boto3", "wattprint.report")),  # boto3 only once something is sent
    ("report", (*HEAVY, "boto3")),
    ("energy", (*HEAVY, "boto3", "wattprint.report", "wattprint.ingest")),
    ("authorizer", (*HEAVY, "boto3", "wattprint.report")),
    ("appliances", (*HEAVY, "boto3", "wattprint.report")),  # decoding is plain Python
    ("push", (*HEAVY, "pg8000", "wattprint.db")),  # outside the VPC: no database
    ("sweep", (*HEAVY, "boto3", "wattprint.report")),  # no scikit-learn layer: clustering's fit is not loaded
    ("live", (*HEAVY, "boto3")),
    ("live_socket", (*HEAVY, "boto3", "wattprint.report")),
    ("admin", (*HEAVY, "boto3", "wattprint.report")),
])
def test_handler_import_stays_light(function, must_not_load):
    code = (f"import sys; sys.path[:0] = ['layers/core', 'functions/{function}']; import app; "
            f"print(sorted(m for m in {must_not_load!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
