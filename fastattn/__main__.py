"""`python -m fastattn info`: what this installation can do.
`python -m fastattn bench`: run the benchmark suites (see fastattn/bench.py)."""

import argparse
import sys

from . import bench
from .info import collect_info, format_info


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastattn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, device, compiled extension, backends")
    info.add_argument("--json", action="store_true", help="print the same facts as JSON")
    bench_parser = commands.add_parser(
        "bench", help="run the benchmark suites of this checkout, compare results, update README",
        description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_arguments(bench_parser)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench.main(args)
    if args.command == "info":
        facts = collect_info()
        if args.json:
            import json
            print(json.dumps(facts, indent=2))
        else:
            print(format_info(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
