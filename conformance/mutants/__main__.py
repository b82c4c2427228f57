"""``python -m conformance.mutants [NAME...] [--mode M ...] [--json]``: run the mutation catalogue."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from conformance.mutants.campaign import BRIDGE_MODEL, MutantResult, default_modes, run_catalogue
from conformance.mutants.catalogue import CATALOGUE


def _line(result: MutantResult) -> str:
    if result.outcome == "survived":
        return f"SURVIVED {result.name:36} {result.seconds:7.1f} s"
    if result.outcome == "undecided":
        return f"UNDECIDED {result.name:35} {result.seconds:7.1f} s  {result.detail}"
    return (
        f"killed   {result.name:36} {result.seconds:7.1f} s  by {result.mode} ({result.case}) "
        f"after {result.steps} steps"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--mode", action="append", dest="modes", help="only these modes (repeatable)")
    parser.add_argument(
        "--model", default=BRIDGE_MODEL, help="model of the bridge's replay and stateful modes"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    known = {m.name for m in CATALOGUE}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(
            f"mutants: unknown mutant {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    modes = default_modes(args.model, args.seed)
    if args.modes:
        names = {m.name for m in modes}
        if not set(args.modes) <= names:
            print(f"mutants: unknown mode; known: {', '.join(sorted(names))}", file=sys.stderr)
            return 2
        modes = [m for m in modes if m.name in args.modes]
    progress = None if args.json else (lambda result: print(_line(result), flush=True))
    results, calibration = run_catalogue(
        args.names or None, modes=modes, model=args.model, seed=args.seed, progress=progress
    )
    if args.json:
        print(
            json.dumps(
                {
                    "mutants": [r.to_json() for r in results],
                    "modes": [m.name for m in calibration.modes],
                    "skipped_modes": calibration.skipped,
                }
            )
        )
    else:
        for name, why in calibration.skipped.items():
            print(f"mode {name} not used: {why}")
        killed = sum(r.killed for r in results)
        print(f"{killed}/{len(results)} mutants killed")
    return 0 if all(r.killed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
