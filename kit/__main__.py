"""`python -m kit`: the command-line entry point."""

import sys

from kit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
