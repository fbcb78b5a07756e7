"""The command line of appliance states, on the database the service uses (DATABASE_URL, or the DB_*/PG*
variables, as every wattprint entry point):

    python -m wattprint.appliances train NAME recording.csv [--states OFF,IDLE,ON]
    python -m wattprint.appliances label main.csv [--models NAME,NAME] > labelled.csv
    python -m wattprint.appliances models

Models live in the database, not in a local file, so a model trained here is the one the API and the live
dashboard label with, and the other way round. A recording of `-` is read from standard input.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ServiceError
from . import service


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wattprint.appliances", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="learn an appliance's states from a recording of it alone")
    train.add_argument("name")
    train.add_argument("recording")
    train.add_argument("--states", help="state names, lowest level first (default: found and named by level)")
    label = commands.add_parser("label", help="label each row of a mains recording with every appliance's state")
    label.add_argument("recording")
    label.add_argument("--models", help="only these appliances (comma-separated; default: every model)")
    commands.add_parser("models", help="the stored models, as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            created, learnt = service.train(args.name, _read(args.recording), states=args.states)
            states = ", ".join(f"{s['name']} {s['rms']:.2f} mA" for s in learnt["states"])
            print(f"{'stored' if created else 'replaced'} {learnt['name']}: {states} "
                  f"(switching p={learnt['switch_p']:.2g}/s, {learnt['rows']} rows)", file=sys.stderr)
        elif args.command == "label":
            labelled = service.label(_read(args.recording), names=args.models)
            sys.stdout.write(labelled.csv)
            d = labelled.decoded
            print(f"labelled {len(d.combinations)} rows with {', '.join(m.name for m in labelled.models)} "
                  f"(rho rms {d.rho_rms:.2f}, peak {d.rho_peak:.2f})", file=sys.stderr)
        else:
            print(json.dumps(service.models(), indent=2))
    except ServiceError as error:
        where = ", ".join(f"{k} {v}" for k, v in error.details.items() if v is not None)
        print(f"error: {error.message}" + (f" ({where})" if where else ""), file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
