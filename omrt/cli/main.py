"""`omrt` command line: `omrt atc ...` converts models, `omrt run ...` executes a `.om`."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage = "usage: omrt {atc,run} [options]   (omrt atc --help, omrt run --help)"
    if not args or args[0] in ("-h", "--help"):
        print(usage)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "atc":
        from omrt.cli.atc import main as atc_main

        return atc_main(rest)
    if command == "run":
        from omrt.cli.run import main as run_main

        return run_main(rest)
    print(f"omrt: unknown command {command!r}; {usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
