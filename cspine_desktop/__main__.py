"""``python -m cspine_desktop`` starts the desktop app (same as ``cspine gui``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["gui", *sys.argv[1:]]))
