"""The conductor: runs melodies over the Pit and the extensions, and recovers from failures."""

from typing import Final

#: Ended runs whose progress a conductor keeps by default (``Conductor.keep_runs``); here, not in
#: ``conductor.py``, so that ``symphony run --help`` need not import the conductor.
DEFAULT_KEEP_RUNS: Final = 1000
