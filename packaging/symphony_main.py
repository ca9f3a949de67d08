"""The frozen bundle's entry point: the ``symphony`` command (GUI, CLI and extension children).

Kept to the one import: :func:`symphony.cli.main` handles ``--run-extension`` before it imports
anything else, so an extension child of the bundle starts without Qt.
"""

import sys

from symphony.cli import main

if __name__ == "__main__":
    sys.exit(main())
