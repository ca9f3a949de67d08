"""The models a run may use: ids, the provider behind each, and what the Pool Manager knows.

A node's ``model`` config field (kind ``model-choice``) and its policy's ``fallback_models`` name
models of this catalog. ``""`` means the default, the embedded SmolLM2 model of the AI Instrument.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["EMBEDDED_MODEL", "ModelCatalog", "ModelSpec"]

#: The AI Instrument's embedded model (``providers/embedded.py``'s ``MODEL_ID``).
EMBEDDED_MODEL: Final = "smollm2-135m-instruct-q4_1"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model.

    Attributes
    ----------
    id
        What nodes name it by.
    provider
        The AI Instrument provider spec (``{"kind": "openai", "base_url", "model", …}``), or
        ``None`` for the embedded model.
    slots
        Requests it serves at once (the Pool Manager's slots).
    memory
        Bytes it holds when loaded (for the pool's memory limit).
    price_per_call, price_per_token
        What a call costs, for budgets.
    """

    id: str
    provider: Mapping[str, Any] | None = None
    slots: int = 1
    memory: int = 0
    price_per_call: float = 0.0
    price_per_token: float = 0.0
    fallbacks: tuple[str, ...] = field(default=())


class ModelCatalog:
    """Models by id; always holds the embedded model."""

    def __init__(self, models: Mapping[str, ModelSpec] | None = None) -> None:
        self._models: dict[str, ModelSpec] = {
            EMBEDDED_MODEL: ModelSpec(EMBEDDED_MODEL, None, slots=1, memory=200 << 20)
        }
        self._models.update(models or {})

    def add(self, spec: ModelSpec) -> None:
        """Add or replace a model."""
        self._models[spec.id] = spec

    def resolve(self, model: str) -> ModelSpec:
        """Return the spec of ``model`` (``""``: the embedded default).

        Raises
        ------
        KeyError
            Naming the model and the known ones.
        """
        spec = self._models.get(model or EMBEDDED_MODEL)
        if spec is None:
            known = ", ".join(sorted(self._models))
            raise KeyError(f"unknown model {model!r} (known: {known})")
        return spec

    def __contains__(self, model: object) -> bool:
        return model == "" or model in self._models

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())
