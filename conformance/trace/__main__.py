"""``python -m conformance.trace DIR [--json]``: validate the event logs of a cluster directory."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance.trace import TraceInputError, validate_directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.trace", description=__doc__)
    parser.add_argument("directory", type=Path, help="cluster directory (cluster.toml, events/)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    try:
        report = validate_directory(args.directory)
    except TraceInputError as exc:
        print(f"trace: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json()) if args.json else report.summary())
    return 0 if report.conforms else 1


if __name__ == "__main__":
    sys.exit(main())
