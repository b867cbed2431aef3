"""``python -m codegen [--check] [--spec PATH] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codegen import unasync
from codegen.model import SpecError, load
from codegen.render import ROOT, check, render, write
from codegen.schema_check import SchemaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument("--spec", type=Path, default=ROOT / "spec" / "api.json")
    parser.add_argument("--schema", type=Path, default=ROOT / "spec" / "api.schema.json")
    parser.add_argument("--message-schema", type=Path, default=ROOT / "spec" / "message.json")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "beanstalkm" / "_generated")
    parser.add_argument("--derived-out", type=Path, default=unasync.DERIVED_DIR, help="where the sync flavour goes")
    parser.add_argument("--check", action="store_true", help="fail if the generated files are not current")
    args = parser.parse_args(argv)
    try:
        spec = load(args.spec, args.schema)
    except SpecError as exc:
        print(f"{args.spec}: invalid spec: {exc}", file=sys.stderr)
        return 2
    try:
        files = render(spec, args.message_schema)
    except SchemaError as exc:
        print(f"{args.message_schema}: unsupported message schema: {exc}", file=sys.stderr)
        return 2
    try:
        derived = unasync.derive_all()
    except unasync.UnasyncError as exc:
        print(f"cannot derive the sync flavour: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = check(files, args.out) + check(derived, args.derived_out)
        if problems:
            print("generated code is out of date:", *problems, "fix: run `make generate`", sep="\n  ", file=sys.stderr)
            return 1
        print(f"generated code is current ({len(files)} files; {len(derived)} derived sync files)")
        return 0
    for out, produced in ((args.out, files), (args.derived_out, derived)):
        changed = write(produced, out)
        print(
            f"wrote {len(changed)} of {len(produced)} files to {out}" + (": " + ", ".join(changed) if changed else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
