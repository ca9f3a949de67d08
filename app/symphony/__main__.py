"""``python -m symphony``."""

from symphony.cli import main

raise SystemExit(main())
