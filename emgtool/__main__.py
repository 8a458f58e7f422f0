"""``python -m emgtool`` runs the command-line interface."""

import sys

from emgtool.cli import main

if __name__ == "__main__":
    sys.exit(main())
