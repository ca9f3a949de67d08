"""The conductor: runs melodies over the Pit and the extensions, and recovers from failures."""

from typing import Final

#: Ended runs whose progress a conductor keeps by default (``Conductor.keep_runs``); here, not in
#: ``conductor.py``, so that ``symphony run --help`` need not import the conductor.
DEFAULT_KEEP_RUNS: Final = 1000

#: Artifact names the conductor stores under (light to import, for views of the store): each
#: run's record, the melody it ran, its decision traces, its event log, node outputs, the cache
#: index.
RUN_PREFIX: Final = "run/"
MELODY_PREFIX: Final = "melody/"
TRACE_PREFIX: Final = "fqg.trace/"
EVENTS_PREFIX: Final = "run.events/"
OUTPUT_PREFIX: Final = "out/"
CACHE_PREFIX: Final = "cache/"
