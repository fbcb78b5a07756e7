#!/usr/bin/env python3
"""Check every function's unzipped deployment size (its own code plus every layer it uses) after `sam build`.

Lambda refuses a function whose code and layers add up to more than 250 MB unzipped (262,144,000 bytes), and it
only says so at deploy time. This reads the built template (.aws-sam/build/template.yaml), resolves each
function's CodeUri and Layers (Globals included) to the build directories, and sums the file sizes.

    python tools/check_build_size.py [--build-dir .aws-sam/build] [--limit-mb 240]

Exit status: 0 when every function is within the limit, 1 when one is not, 2 when the build is missing or
cannot be read. Stdlib + PyYAML only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

MB = 1024 * 1024
LAMBDA_HARD_LIMIT = 262_144_000  # 250 MB: code + layers, unzipped
RDS_CA_BUNDLE = Path("python/wattprint/certs/rds-global-bundle.pem")


class _CfnLoader(yaml.SafeLoader):
    """Tolerates CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...) by turning them into long forms."""


def _construct_tag(loader: yaml.Loader, suffix: str, node: yaml.Node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of every regular file under path, as Lambda unzips it (symlinks followed, like zip does)."""
    total = files = 0
    for root, _dirs, names in os.walk(path, followlinks=True):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
                files += 1
            except FileNotFoundError:  # dangling symlink: zip would skip it too
                continue
    return total, files


def _logical_id(ref) -> str | None:
    """The logical ID a Layers entry points at, or None for an ARN (a layer not built here)."""
    if isinstance(ref, dict) and "Ref" in ref and isinstance(ref["Ref"], str):
        return ref["Ref"]
    return None


def _location(props: dict, key: str) -> str | None:
    value = props.get(key)
    return value if isinstance(value, str) else None


def analyse(build_dir: Path) -> tuple[list[dict], dict[str, dict]]:
    template_path = build_dir / "template.yaml"
    template = yaml.load(template_path.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)
    resources = template.get("Resources") or {}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}

    layers: dict[str, dict] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            props = resource.get("Properties") or {}
            uri = _location(props, "ContentUri") or _location(props.get("Content") or {}, "S3Key") or logical_id
            path = (build_dir / uri).resolve()
            size, files = tree_size(path) if path.is_dir() else (0, 0)
            layers[logical_id] = {"path": path, "size": size, "files": files, "exists": path.is_dir()}

    functions = []
    for logical_id, resource in resources.items():
        if resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        props = resource.get("Properties") or {}
        if (props.get("PackageType") or globals_fn.get("PackageType")) == "Image":
            continue  # image functions have a 10 GB limit and no layers
        uri = _location(props, "CodeUri") or _location(globals_fn, "CodeUri") or logical_id
        code = (build_dir / uri).resolve()
        code_size, _ = tree_size(code) if code.is_dir() else (0, 0)
        # SAM appends a function's Layers to the Globals' ones.
        refs = list(globals_fn.get("Layers") or []) + list(props.get("Layers") or [])
        used, external = [], []
        for ref in refs:
            layer_id = _logical_id(ref)
            if layer_id in layers:
                used.append(layer_id)
            else:
                external.append(ref)
        total = code_size + sum(layers[name]["size"] for name in used)
        functions.append({
            "name": logical_id, "code": code, "code_exists": code.is_dir(), "code_size": code_size,
            "layers": used, "external": external, "total": total,
        })
    return functions, layers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"),
                        help="the `sam build` output (default: .aws-sam/build)")
    parser.add_argument("--limit-mb", type=float, default=240.0,
                        help="fail above this many MiB unzipped per function (default 240; Lambda's hard limit "
                             "is 250 MB = 262,144,000 bytes)")
    args = parser.parse_args(argv)

    if not (args.build_dir / "template.yaml").is_file():
        print(f"{args.build_dir / 'template.yaml'} not found: run `sam build` first", file=sys.stderr)
        return 2
    try:
        functions, layers = analyse(args.build_dir)
    except (yaml.YAMLError, OSError) as error:
        print(f"cannot read the build: {error}", file=sys.stderr)
        return 2
    if not functions:
        print("no Zip functions in the built template", file=sys.stderr)
        return 2

    limit = int(args.limit_mb * MB)
    problems = []
    print("Layers (unzipped):")
    for name, layer in sorted(layers.items()):
        state = "" if layer["exists"] else "  (build dir missing)"
        print(f"  {name:<22} {layer['size'] / MB:9.1f} MiB  {layer['files']:6d} files{state}")
        if not layer["exists"]:
            problems.append(f"layer {name}: build directory {layer['path']} is missing")

    print()
    print(f"{'Function':<22} {'code MiB':>9} {'layers MiB':>11} {'total MiB':>10}  {'limit':>6}  layers")
    for fn in sorted(functions, key=lambda f: -f["total"]):
        layers_size = fn["total"] - fn["code_size"]
        ok = fn["total"] <= limit
        status = "ok" if ok else "OVER"
        names = ", ".join(fn["layers"]) or "-"
        if fn["external"]:
            names += f" (+{len(fn['external'])} not built here, not counted)"
        print(f"{fn['name']:<22} {fn['code_size'] / MB:9.2f} {layers_size / MB:11.1f} {fn['total'] / MB:10.1f}"
              f"  {status:>6}  {names}")
        if not fn["code_exists"]:
            problems.append(f"{fn['name']}: build directory {fn['code']} is missing")
        if not ok:
            problems.append(f"{fn['name']}: {fn['total'] / MB:.1f} MiB unzipped > {args.limit_mb:g} MiB "
                            f"(Lambda's hard limit is {LAMBDA_HARD_LIMIT / MB:.1f} MiB)")

    biggest = max(functions, key=lambda f: f["total"])
    print(f"\nLargest: {biggest['name']} {biggest['total'] / MB:.1f} MiB, "
          f"{(limit - biggest['total']) / MB:.1f} MiB below the {args.limit_mb:g} MiB limit")

    core = layers.get("CoreLayer")
    if core and core["exists"] and not (core["path"] / RDS_CA_BUNDLE).is_file():
        print(f"WARNING: CoreLayer has no {RDS_CA_BUNDLE.relative_to('python')}: this build cannot connect to "
              "Aurora (TLS fails closed). Rebuild online or with RDS_CA_BUNDLE before deploying "
              "(sam build --no-cached).", file=sys.stderr)

    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
