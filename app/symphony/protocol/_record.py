"""``@record``: a small stand-in for ``@dataclass(slots=True)`` that is cheap to import.

Extension children import every message class on each start, and ``dataclasses`` (with the
``inspect`` and ``ast`` it pulls in) plus its per-class code generation cost about 18 ms of the
50 ms spawn → ready budget. ``record`` builds the same things a plain dataclass would — a slotted
class, ``__init__`` with defaults and ``field(default_factory=...)``, ``__repr__``, ``__eq__``,
``__hash__`` when frozen, ``__match_args__`` — for a fraction of that. Type checkers see it as a
dataclass (:func:`typing.dataclass_transform`).

Field annotations are read as written (``from __future__ import annotations``: strings); one
starting with ``ClassVar`` is a class variable, not a field.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")


class FrozenInstanceError(AttributeError):
    """Raised on assignment to a field of a frozen record."""


class _Field:
    __slots__ = ("default_factory",)

    def __init__(self, default_factory: Callable[[], Any]) -> None:
        self.default_factory = default_factory


def field(*, default_factory: Callable[[], _T]) -> _T:
    """Declare a field whose default is made per instance (like ``dataclasses.field``)."""
    return _Field(default_factory)  # type: ignore[return-value]


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _build(cls: type[_T], frozen: bool, eq: bool) -> type[_T]:
    annotations = cls.__dict__.get("__annotations__", {})
    names = [
        n
        for n, a in annotations.items()
        if not (isinstance(a, str) and a.replace("typing.", "").startswith("ClassVar"))
    ]
    ns = {k: v for k, v in cls.__dict__.items() if k not in names}
    ns.pop("__dict__", None)
    ns.pop("__weakref__", None)
    ns["__slots__"] = tuple(names)
    ns["__match_args__"] = tuple(names)
    env: dict[str, Any] = {"__set": object.__setattr__}
    params, body = [], []
    for n in names:
        default = cls.__dict__.get(n, _MISSING)
        if isinstance(default, _Field):
            env[f"__f_{n}"] = default.default_factory
            params.append(f"{n}=__missing")
            body.append(f"__set(self, {n!r}, __f_{n}() if {n} is __missing else {n})")
        elif default is not _MISSING:
            env[f"__d_{n}"] = default
            params.append(f"{n}=__d_{n}")
            body.append(f"__set(self, {n!r}, {n})")
        else:
            if any("=" in p for p in params):
                raise TypeError(f"{cls.__name__}: field {n!r} without a default follows one with")
            params.append(n)
            body.append(f"__set(self, {n!r}, {n})")
    env["__missing"] = _MISSING
    src = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
    if not frozen:
        src = src.replace("__set(self, ", "setattr(self, ")
    exec(src, env)  # the same technique as dataclasses, minus its bookkeeping
    ns["__init__"] = env["__init__"]
    ns["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    getter = attrgetter(*names) if names else (lambda self: ())

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__qualname__}({inner})"

    ns["__repr__"] = __repr__
    if eq:

        def __eq__(self: Any, other: object) -> bool:
            if other.__class__ is not self.__class__:
                return NotImplemented
            return bool(getter(self) == getter(other))

        ns["__eq__"] = __eq__
        if frozen:
            ns["__hash__"] = lambda self: hash(getter(self))
        else:
            ns["__hash__"] = None
    if frozen:
        ns["__setattr__"] = _frozen_setattr
        ns["__delattr__"] = _frozen_delattr

        def __getstate__(self: Any) -> tuple[Any, ...]:
            return tuple(getattr(self, n) for n in names)

        def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
            for n, v in zip(names, state, strict=True):
                object.__setattr__(self, n, v)

        ns["__getstate__"] = __getstate__
        ns["__setstate__"] = __setstate__
    meta: type[type] = type(cls)
    new: type[_T] = meta(cls.__name__, cls.__bases__, ns)
    new.__qualname__ = cls.__qualname__
    return new


class _Missing:
    __slots__ = ()


_MISSING: Any = _Missing()


def replace(obj: _T, /, **changes: Any) -> _T:
    """Return a copy of record ``obj`` with some fields changed (like ``dataclasses.replace``)."""
    names: tuple[str, ...] = getattr(type(obj), "__match_args__", ())
    unknown = set(changes) - set(names)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {', '.join(sorted(unknown))}")
    values = {n: changes[n] if n in changes else getattr(obj, n) for n in names}
    return type(obj)(**values)


@overload
def record(cls: type[_T], /) -> type[_T]: ...


@overload
def record(*, frozen: bool = False, eq: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field,))
def record(
    cls: type[_T] | None = None, /, *, frozen: bool = False, eq: bool = True
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Turn a class with annotated fields into a slotted record (see the module docstring).

    Parameters
    ----------
    cls
        The class (when used as ``@record`` without arguments).
    frozen
        Whether assignment after ``__init__`` raises :class:`FrozenInstanceError`.
    eq
        Whether instances compare (and, when frozen, hash) by their fields.

    Returns
    -------
    type or Callable
        The new class, or the decorator.
    """

    def wrap(c: type[_T]) -> type[_T]:
        return _build(c, frozen, eq)

    return wrap if cls is None else wrap(cls)


__all__ = ["FrozenInstanceError", "field", "record", "replace"]
