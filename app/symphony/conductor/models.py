"""The models a run may use: ids, the provider behind each, and what the Pool Manager knows.

A node's ``model`` config field (kind ``model-choice``) and its policy's ``fallback_models`` name
models of this catalog. ``""`` means the default, the embedded SmolLM2 model of the AI Instrument;
with the embedded model turned off, ``""`` names no model.
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
    """Models by id; holds the embedded model unless it is turned off.

    Parameters
    ----------
    models
        Models besides the embedded one, by id.
    embedded
        Whether the embedded model may run (the Settings' "Use the embedded model"). Without
        it, neither ``""`` (the default model) nor the embedded model's id names a model, and
        :meth:`resolve` says that it is turned off rather than unknown.
    """

    def __init__(
        self, models: Mapping[str, ModelSpec] | None = None, *, embedded: bool = True
    ) -> None:
        self._embedded = embedded
        self._models: dict[str, ModelSpec] = {}
        if embedded:
            self._models[EMBEDDED_MODEL] = ModelSpec(
                EMBEDDED_MODEL, None, slots=1, memory=200 << 20
            )
        self._models.update(models or {})

    @property
    def embedded(self) -> bool:
        """Whether the embedded model may run."""
        return self._embedded

    def add(self, spec: ModelSpec) -> None:
        """Add or replace a model."""
        self._models[spec.id] = spec

    def sync(self, other: ModelCatalog) -> None:
        """Hold exactly ``other``'s models from now on, in place.

        The conductor, its broker and the model tracker share one catalog, so new settings
        replace its contents rather than the object. A model ``other`` lacks is gone: a removed
        or renamed endpoint no longer resolves, so its key entry is no longer asked for.
        """
        self._embedded = other._embedded
        self._models = dict(other._models)

    def problem(self, model: str) -> str | None:
        """Return why ``model`` cannot be used, or ``None`` if it can.

        The message names the model; for ``""`` and the embedded model while that is turned
        off, it says so and lists the models that can run instead.
        """
        if model in self:
            return None
        known = ", ".join(sorted(self._models)) or "none"
        if model in ("", EMBEDDED_MODEL) and not self._embedded:
            which = (
                f"no model is chosen and the default, the embedded model {EMBEDDED_MODEL!r},"
                if model == ""
                else f"the embedded model {model!r}"
            )
            return (
                f'{which} is turned off in the Settings ("Use the embedded model"); choose '
                f"another model (known: {known})"
            )
        return f"unknown model {model!r} (known: {known})"

    def resolve(self, model: str) -> ModelSpec:
        """Return the spec of ``model`` (``""``: the embedded default).

        Raises
        ------
        KeyError
            Naming the model and why it cannot be used (:meth:`problem`).
        """
        spec = self._models.get(model or EMBEDDED_MODEL)
        if spec is None:
            raise KeyError(self.problem(model))
        return spec

    def __contains__(self, model: object) -> bool:
        return (EMBEDDED_MODEL if model == "" else model) in self._models

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())
