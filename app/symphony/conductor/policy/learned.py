"""The trained recovery policy: a small MLP trained with torch in the Function Quest Game.

The weights ship as ``resources/policy/policy.npz`` (numpy's zip of arrays, read with
``allow_pickle=False``: loading a weights file never runs code). At decision time the forward
pass runs in numpy by default: the network is three small matrix products, and torch's per-call
dispatch costs several times the arithmetic (measured in ``docs/policy.md``); the first failure of
a run must not pay torch's import (~1 s) either. ``backend="torch"`` runs the same weights through
``torch.nn`` (used to check the two agree, and by the benchmark's torch case).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from symphony.conductor.policy.context import (
    FEATURE_NAMES,
    STRATEGIES,
    Decision,
    FailureContext,
    Strategy,
    describe,
    legal_mask,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

#: Version of the weights file layout; bump when the features or the layers change.
WEIGHTS_FORMAT = 2
DEFAULT_WEIGHTS = "policy.npz"


class PolicyLoadError(ValueError):
    """A weights file is missing, unreadable or does not fit this version's network."""


def default_weights_path() -> Path:
    """Where the shipped weights are (``symphony/resources/policy/policy.npz``)."""
    return Path(str(resources.files("symphony.resources").joinpath("policy", DEFAULT_WEIGHTS)))


@dataclass(frozen=True)
class Weights:
    """The network's layers (``layers[i] = (W, b)``, ``W`` shaped out x in) and its metadata."""

    layers: tuple[tuple[FloatArray, FloatArray], ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights to ``path`` (an ``.npz``), replacing it atomically.

        The arrays go to ``<path>.tmp`` first, which is then renamed over ``path``. On any
        failure (disk full, ``path`` a folder, an interrupt) the temporary file is removed and
        ``path`` is left as it was.

        Raises
        ------
        OSError
            The file could not be written or renamed into place.
        """
        import numpy as np

        arrays: dict[str, Any] = {}
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"] = np.ascontiguousarray(w, dtype=np.float32)
            arrays[f"b{i}"] = np.ascontiguousarray(b, dtype=np.float32)
        meta = {
            **self.meta,
            "format": WEIGHTS_FORMAT,
            "features": list(FEATURE_NAMES),
            "strategies": [s.value for s in STRATEGIES],
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, target)
        except BaseException:
            # KeyboardInterrupt too: a half-written .tmp next to the weights is only litter.
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Weights:
        """Read and check a weights file.

        Raises
        ------
        PolicyLoadError
            The file is missing or damaged, or its features/strategies/shapes do not match.
        """
        import numpy as np

        p = Path(path)
        if not p.is_file():
            raise PolicyLoadError(f"policy weights {p}: no such file")
        try:
            # np.load leaks its handle when the zip is damaged: own the file.
            with open(p, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            why = str(e)
            if "pickle" in why:
                # numpy's own text advises loading it unsafely: never, a pickle can run code
                why = "it holds pickled Python objects, which are never loaded"
            raise PolicyLoadError(f"policy weights {p}: not a readable weights file ({why})") from e
        if "meta" not in arrays:
            raise PolicyLoadError(f"policy weights {p}: no 'meta' entry")
        try:
            meta = json.loads(arrays["meta"].tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PolicyLoadError(f"policy weights {p}: 'meta' is not JSON ({e})") from e
        if not isinstance(meta, dict):
            raise PolicyLoadError(f"policy weights {p}: 'meta' is not an object")
        if meta.get("format") != WEIGHTS_FORMAT:
            raise PolicyLoadError(
                f"policy weights {p}: format {meta.get('format')!r}, this version reads "
                f"{WEIGHTS_FORMAT}"
            )
        if meta.get("features") != list(FEATURE_NAMES):
            raise PolicyLoadError(f"policy weights {p}: trained on other features")
        if meta.get("strategies") != [s.value for s in STRATEGIES]:
            raise PolicyLoadError(f"policy weights {p}: trained for other strategies")
        layers = []
        width = len(FEATURE_NAMES)
        i = 0
        while f"w{i}" in arrays:
            w, b = arrays[f"w{i}"], arrays.get(f"b{i}")
            if b is None or w.ndim != 2 or b.shape != (w.shape[0],) or w.shape[1] != width:
                raise PolicyLoadError(
                    f"policy weights {p}: layer {i} has shape {w.shape}, expected (*, {width})"
                )
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise PolicyLoadError(f"policy weights {p}: layer {i} holds NaN or infinity")
            layers.append((w.astype(np.float32), b.astype(np.float32)))
            width = w.shape[0]
            i += 1
        if not layers or width != len(STRATEGIES):
            raise PolicyLoadError(
                f"policy weights {p}: the last layer must have {len(STRATEGIES)} outputs"
            )
        return cls(tuple(layers), meta)


_NEG = -math.inf


def _decision(logits: list[float], ctx: FailureContext) -> Decision:
    legal = legal_mask(ctx)
    best = -1
    top = _NEG
    for i, ok in enumerate(legal):
        if ok and logits[i] > top:
            best, top = i, logits[i]
    exps = [math.exp(logits[i] - top) if ok else 0.0 for i, ok in enumerate(legal)]
    total = sum(exps)
    scores = {STRATEGIES[i]: exps[i] / total for i, ok in enumerate(legal) if ok}
    chosen = STRATEGIES[best]
    return Decision(chosen, describe(chosen, ctx), scores)


class LearnedPolicy:
    """The trained MLP, run in numpy (see the module docstring)."""

    def __init__(self, weights: Weights, name: str = "learned") -> None:
        self.name = name
        self.weights = weights
        self._layers = weights.layers

    def logits(self, x: FloatArray) -> FloatArray:
        """Return the network's raw outputs for one feature vector (or a batch, one per row)."""
        import numpy as np

        h = x
        last = len(self._layers) - 1
        for i, (w, b) in enumerate(self._layers):
            h = h @ w.T + b
            if i < last:
                h = np.maximum(h, 0.0)
        return h

    def choose_index(self, ctx: FailureContext) -> int:
        """Return the index (in :data:`STRATEGIES`) of the best legal strategy; no reason built."""
        import numpy as np

        out = self.logits(np.array(ctx.feature_list(), dtype=np.float32))
        legal = legal_mask(ctx)
        masked = np.where(legal, out, -np.inf)
        return int(masked.argmax())

    def decide(self, ctx: FailureContext) -> Decision:
        """Choose the legal strategy with the highest score."""
        import numpy as np

        out = self.logits(np.array(ctx.feature_list(), dtype=np.float32))
        return _decision(out.tolist(), ctx)


class TorchPolicy:
    """The same network run through ``torch.nn`` (imports torch)."""

    def __init__(self, weights: Weights, name: str = "learned-torch") -> None:
        import torch

        self.name = name
        self.weights = weights
        mods: list[torch.nn.Module] = []
        for i, (w, b) in enumerate(weights.layers):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if i < len(weights.layers) - 1:
                mods.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*mods).eval()
        self._torch = torch

    def decide(self, ctx: FailureContext) -> Decision:
        """Choose the legal strategy with the highest score."""
        torch = self._torch
        with torch.inference_mode():
            out = self.net(torch.tensor(ctx.feature_list(), dtype=torch.float32))
        return _decision(out.tolist(), ctx)


def load_policy(
    path: str | os.PathLike[str] | None = None,
    *,
    backend: Literal["numpy", "torch"] = "numpy",
) -> LearnedPolicy | TorchPolicy:
    """Load the trained policy.

    Parameters
    ----------
    path
        A weights file written by ``symphony fqg train``; default: the shipped one.
    backend
        ``"numpy"`` (default, fast, no torch import) or ``"torch"``.

    Returns
    -------
    Policy
        The policy; it never returns an illegal strategy.

    Raises
    ------
    PolicyLoadError
        The file is missing, damaged, or for another network.
    """
    p = default_weights_path() if path is None else Path(path)
    weights = Weights.load(p)
    if backend == "torch":
        return TorchPolicy(weights)
    if backend != "numpy":
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    return LearnedPolicy(weights)


__all__ = [
    "DEFAULT_WEIGHTS",
    "WEIGHTS_FORMAT",
    "LearnedPolicy",
    "PolicyLoadError",
    "Strategy",
    "TorchPolicy",
    "Weights",
    "default_weights_path",
    "load_policy",
]
