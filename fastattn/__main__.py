"""`python -m fastattn info`: what this installation can do."""

import argparse
import sys

from .info import collect_info, format_info


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastattn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, device, compiled extension, backends")
    info.add_argument("--json", action="store_true", help="print the same facts as JSON")
    args = parser.parse_args(argv)
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
