"""Node-type descriptions: what a node of a type looks like (ports, config) before it runs.

A description is plain, frozen data. Built-in operators define theirs in
:mod:`symphony.registry.builtins`; extensions contribute theirs as ``[[node_types]]`` tables in
their manifest, which :func:`description_from_dict` turns into a :class:`NodeTypeDescription` with
errors that name the offending field (``node_types[2].inputs[0].type: unknown port type ...``).

The dictionary form (one ``[[node_types]]`` table)::

    id = "ai.code_generator"           # required; dotted lower-case words
    version = "1.0.0"                  # required; MAJOR.MINOR.PATCH
    title = "Generate code"            # required
    category = "Instruments"           # required; Instruments | Operators | Files
    description = "..."                # optional
    idempotent = false                 # optional; same inputs give the same outputs
    reverse_reconstruction = false     # optional; can rebuild its inputs from its outputs
    method = "node.files.read"         # optional; the protocol method that runs a node of this
                                       # type (extension types only; default: the type id)
    cacheable = true                   # optional; false for types that read or change the world
                                       # outside their inputs (files): never served from a cache
    inputs = [{ name = "features", type = "json", required = true, multiple = false,
                description = "..." }]
    outputs = [{ name = "code", type = "code", description = "..." }]
    config = [{ name = "model", kind = "model-choice", label = "Model", default = "",
                required = false, description = "...", choices = [...],   # enum / model-choice
                minimum = 0, maximum = 1, integer = false,                # number
                multiline = false, max_length = 100000 }]                 # text
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from symphony.registry.types import PortType, parse_port_type

__all__ = [
    "Category",
    "ConfigField",
    "FieldKind",
    "NodeTypeDescription",
    "NodeTypeError",
    "PortSpec",
    "description_from_dict",
]

# \Z, not $: "$" also matches before a final line break ("text.upper\n" would pass)
TYPE_ID_RE: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
PORT_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]*\Z")
VERSION_RE: Final = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?\Z")


class NodeTypeError(ValueError):
    """A node-type description that is malformed; the message names the field path.

    Attributes
    ----------
    path
        The field path, e.g. ``node_types[2].inputs[0].type``.
    reason
        What is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


class Category(StrEnum):
    """Where a node type appears in the palette."""

    INSTRUMENTS = "Instruments"
    OPERATORS = "Operators"
    FILES = "Files"


class FieldKind(StrEnum):
    """The kind of a config field, which decides its editor and its validation."""

    TEXT = "text"
    NUMBER = "number"
    ENUM = "enum"
    BOOL = "bool"
    MODEL_CHOICE = "model-choice"


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One input or output port of a node type.

    Attributes
    ----------
    name
        The port's name, unique among the type's inputs (or outputs).
    type
        Its :class:`~symphony.registry.types.PortType`.
    required
        For inputs: a node of this type is invalid until a link feeds this port.
    multiple
        For inputs: more than one link may feed it (the values arrive as a list).
    description
        One sentence for tooltips.
    """

    name: str
    type: PortType
    required: bool = False
    multiple: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One configuration field of a node type, with its default and validation.

    Attributes
    ----------
    name
        The key in a node's ``config``.
    kind
        The :class:`FieldKind`.
    label
        What the properties panel shows (defaults to the name).
    default
        The value a new node starts with (``None``: unset).
    required
        The node is invalid while the value is unset or empty.
    description
        One sentence for tooltips.
    choices
        For ``enum``: the allowed values. For ``model-choice``: suggested model ids (any id is
        accepted, the pool decides at run time).
    minimum, maximum
        For ``number``: inclusive bounds.
    integer
        For ``number``: whole numbers only.
    multiline
        For ``text``: edited in a multi-line box.
    max_length
        For ``text``: the longest accepted value.
    """

    name: str
    kind: FieldKind
    label: str = ""
    default: Any = None
    required: bool = False
    description: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    multiline: bool = False
    max_length: int | None = None

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not acceptable for this field, or ``None`` if it is.

        ``None`` (unset) is acceptable unless the field is required.
        """
        if value is None or (value == "" and self.kind in (FieldKind.TEXT, FieldKind.MODEL_CHOICE)):
            return "is required" if self.required else None
        kind = self.kind
        if kind is FieldKind.TEXT:
            if not isinstance(value, str):
                return f"expected text, got {_describe(value)}"
            if self.max_length is not None and len(value) > self.max_length:
                return f"is {len(value)} characters long; the most is {self.max_length}"
            return None
        if kind is FieldKind.BOOL:
            return (
                None
                if isinstance(value, bool)
                else f"expected true or false, got {_describe(value)}"
            )
        if kind is FieldKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"expected a number, got {_describe(value)}"
            if isinstance(value, float) and not math.isfinite(value):
                return f"expected a finite number, got {value}"
            if isinstance(value, int) and abs(value) > _MAX_NUMBER:
                # float(value) would raise OverflowError; such a number fits no float field
                # and no runtime reading the config as a double
                return f"{_describe(value)} is too large (the most is about {_MAX_NUMBER:.3g})"
            if self.integer and isinstance(value, float) and not value.is_integer():
                return f"expected a whole number, got {value}"
            if self.minimum is not None and value < self.minimum:
                return f"{value} is below the minimum {_num(self.minimum)}"
            if self.maximum is not None and value > self.maximum:
                return f"{value} is above the maximum {_num(self.maximum)}"
            return None
        if kind is FieldKind.ENUM:
            if value not in self.choices:
                return f"{_describe(value)} is not one of: {', '.join(self.choices)}"
            return None
        # model-choice: a model id; the pool decides at run time whether it exists
        if not isinstance(value, str):
            return f"expected a model id, got {_describe(value)}"
        return None


_MAX_NUMBER: Final = sys.float_info.max


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        r = repr(value)
        return r if len(r) <= 40 else r[:37] + "..."
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) > 10**30:
        # a whole number of hundreds of digits would swamp the message (and past
        # sys.get_int_max_str_digits cannot even be written out)
        return f"a whole number of about {value.bit_length() * 0.30103:.0f} digits"
    if isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__}"


@dataclass(frozen=True, slots=True)
class NodeTypeDescription:
    """Everything the board, the validator and the conductor know about a node type.

    Attributes
    ----------
    type_id
        Dotted lower-case id (``op.template``, ``ai.code_generator``); stored in melody files.
    version
        ``MAJOR.MINOR.PATCH`` of the description.
    title
        Name shown in the palette and given to new nodes.
    category
        Palette group.
    description
        A sentence or two.
    inputs, outputs
        Ports, in display order.
    config
        Config fields, in display order.
    idempotent
        Running twice with the same inputs and config gives the same outputs (safe to retry,
        cacheable).
    reverse_reconstruction
        Declares that the type can rebuild plausible inputs from its outputs (the conductor's
        reverse-reconstruction recovery).
    source
        ``"builtin"`` or the id of the extension that contributed it.
    method
        The protocol method the conductor requests to run a node of an extension's type, with
        params ``{"inputs", "config", "options"}``; defaults to the type id.
    cacheable
        Whether the conductor may serve an unchanged node of this type from the Artifact Store.
        ``False`` for types whose outcome depends on or changes the outside world (reading or
        writing files): their inputs and config do not determine their effect.
    """

    type_id: str
    version: str
    title: str
    category: Category
    description: str = ""
    inputs: tuple[PortSpec, ...] = ()
    outputs: tuple[PortSpec, ...] = ()
    config: tuple[ConfigField, ...] = ()
    idempotent: bool = False
    reverse_reconstruction: bool = False
    source: str = "builtin"
    method: str = ""
    cacheable: bool = True
    _inputs_by_name: dict[str, PortSpec] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _outputs_by_name: dict[str, PortSpec] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _config_by_name: dict[str, ConfigField] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._inputs_by_name.update((p.name, p) for p in self.inputs)
        self._outputs_by_name.update((p.name, p) for p in self.outputs)
        self._config_by_name.update((f.name, f) for f in self.config)

    def input(self, name: str) -> PortSpec | None:
        """Return the input port called ``name``, or ``None``."""
        return self._inputs_by_name.get(name)

    def output(self, name: str) -> PortSpec | None:
        """Return the output port called ``name``, or ``None``."""
        return self._outputs_by_name.get(name)

    def config_field(self, name: str) -> ConfigField | None:
        """Return the config field called ``name``, or ``None``."""
        return self._config_by_name.get(name)

    def default_config(self) -> dict[str, Any]:
        """Return a new node's config: every field with a non-``None`` default."""
        return {f.name: f.default for f in self.config if f.default is not None}

    def check_config(self, config: Mapping[str, Any]) -> list[str]:
        """Return one message per problem in ``config`` (unknown keys, bad values, missing ones).

        Messages read ``config 'threshold': 1.5 is above the maximum 1``.
        """
        problems: list[str] = []
        for key in config:
            if key not in self._config_by_name:
                known = ", ".join(f.name for f in self.config) or "none"
                problems.append(f"config '{key}': unknown field (known: {known})")
        for f in self.config:
            reason = f.check(config.get(f.name))
            if reason is not None:
                problems.append(f"config '{f.name}': {reason}")
        return problems


# ----------------------------------------------------------------------------- parsing dicts

_DESC_KEYS: Final = frozenset(
    {
        "id",
        "version",
        "title",
        "category",
        "description",
        "idempotent",
        "reverse_reconstruction",
        "method",
        "cacheable",
        "inputs",
        "outputs",
        "config",
    }
)
_PORT_KEYS: Final = frozenset({"name", "type", "required", "multiple", "description"})
_FIELD_KEYS: Final = frozenset(
    {
        "name",
        "kind",
        "label",
        "default",
        "required",
        "description",
        "choices",
        "minimum",
        "maximum",
        "integer",
        "multiline",
        "max_length",
    }
)


class _Reader:
    """Typed reads from a mapping, raising :class:`NodeTypeError` with the field path."""

    def __init__(self, data: Any, path: str, allowed: frozenset[str]) -> None:
        if not isinstance(data, Mapping):
            raise NodeTypeError(path, f"expected a table, got {_describe(data)}")
        for key in data:
            if key not in allowed:
                raise NodeTypeError(
                    _join(path, str(key)), f"unknown field (known: {', '.join(sorted(allowed))})"
                )
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def text(self, key: str, *, required: bool = False, default: str = "") -> str:
        if key not in self.data:
            if required:
                raise NodeTypeError(self.at(key), "is required")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise NodeTypeError(self.at(key), f"expected text, got {_describe(value)}")
        if required and not value.strip():
            raise NodeTypeError(self.at(key), "must not be empty")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise NodeTypeError(self.at(key), f"expected true or false, got {_describe(value)}")
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise NodeTypeError(self.at(key), f"expected a number, got {_describe(value)}")
        return value

    def table_list(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise NodeTypeError(self.at(key), f"expected a list of tables, got {_describe(value)}")
        return list(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _ports(reader: _Reader, key: str, *, is_input: bool) -> tuple[PortSpec, ...]:
    ports: list[PortSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(reader.table_list(key)):
        path = f"{reader.at(key)}[{i}]"
        r = _Reader(raw, path, _PORT_KEYS)
        name = r.text("name", required=True)
        if not PORT_NAME_RE.match(name):
            raise NodeTypeError(
                r.at("name"), f"{name!r} is not a port name (lower-case letters, digits, '_')"
            )
        if name in seen:
            raise NodeTypeError(r.at("name"), f"duplicate port name {name!r}")
        seen.add(name)
        if "type" not in r.data:
            raise NodeTypeError(r.at("type"), "is required")
        try:
            port_type = parse_port_type(r.data["type"])
        except ValueError as exc:
            raise NodeTypeError(r.at("type"), str(exc)) from None
        required = r.flag("required")
        multiple = r.flag("multiple")
        if not is_input and (required or multiple):
            bad = "required" if required else "multiple"
            raise NodeTypeError(r.at(bad), "applies to inputs only")
        ports.append(PortSpec(name, port_type, required, multiple, r.text("description")))
    return tuple(ports)


def _config_fields(reader: _Reader) -> tuple[ConfigField, ...]:
    fields: list[ConfigField] = []
    seen: set[str] = set()
    for i, raw in enumerate(reader.table_list("config")):
        path = f"{reader.at('config')}[{i}]"
        r = _Reader(raw, path, _FIELD_KEYS)
        name = r.text("name", required=True)
        if not PORT_NAME_RE.match(name):
            raise NodeTypeError(
                r.at("name"), f"{name!r} is not a field name (lower-case letters, digits, '_')"
            )
        if name in seen:
            raise NodeTypeError(r.at("name"), f"duplicate config field {name!r}")
        seen.add(name)
        kind_raw = r.text("kind", required=True)
        try:
            kind = FieldKind(kind_raw)
        except ValueError:
            known = ", ".join(k.value for k in FieldKind)
            raise NodeTypeError(
                r.at("kind"), f"unknown kind {kind_raw!r}; expected one of: {known}"
            ) from None
        choices_raw = r.data.get("choices", [])
        if not isinstance(choices_raw, Sequence) or isinstance(choices_raw, str):
            raise NodeTypeError(
                r.at("choices"), f"expected a list of texts, got {_describe(choices_raw)}"
            )
        for j, c in enumerate(choices_raw):
            if not isinstance(c, str):
                raise NodeTypeError(f"{r.at('choices')}[{j}]", f"expected text, got {_describe(c)}")
        choices = tuple(choices_raw)
        if kind is FieldKind.ENUM and not choices:
            raise NodeTypeError(r.at("choices"), "an enum field needs at least one choice")
        if choices and kind not in (FieldKind.ENUM, FieldKind.MODEL_CHOICE):
            raise NodeTypeError(r.at("choices"), "applies to enum and model-choice fields only")
        minimum, maximum = r.number("minimum"), r.number("maximum")
        if (minimum is not None or maximum is not None) and kind is not FieldKind.NUMBER:
            which = "minimum" if minimum is not None else "maximum"
            raise NodeTypeError(r.at(which), "applies to number fields only")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise NodeTypeError(r.at("minimum"), f"{minimum} is above the maximum {maximum}")
        max_length = r.number("max_length")
        if max_length is not None and (not float(max_length).is_integer() or max_length < 0):
            raise NodeTypeError(r.at("max_length"), "expected a whole number of at least 0")
        spec = ConfigField(
            name=name,
            kind=kind,
            label=r.text("label") or name,
            default=r.data.get("default"),
            required=r.flag("required"),
            description=r.text("description"),
            choices=choices,
            minimum=minimum,
            maximum=maximum,
            integer=r.flag("integer"),
            multiline=r.flag("multiline"),
            max_length=None if max_length is None else int(max_length),
        )
        if spec.default is not None:
            reason = spec.check(spec.default)
            if reason is not None and not (spec.required and spec.default == ""):
                raise NodeTypeError(r.at("default"), reason)
        fields.append(spec)
    return tuple(fields)


def description_from_dict(
    data: Mapping[str, Any], *, path: str = "", source: str = "builtin"
) -> NodeTypeDescription:
    """Build a :class:`NodeTypeDescription` from its dictionary (manifest) form.

    Parameters
    ----------
    data
        One ``[[node_types]]`` table, as parsed from TOML or JSON.
    path
        The table's path, prefixed to error paths (``node_types[2]``).
    source
        ``"builtin"`` or the contributing extension's id.

    Raises
    ------
    NodeTypeError
        Naming the first malformed field, e.g. ``node_types[0].inputs[1].type: unknown port type``.
    """
    r = _Reader(data, path, _DESC_KEYS)
    type_id = r.text("id", required=True)
    if not TYPE_ID_RE.match(type_id):
        raise NodeTypeError(
            r.at("id"),
            f"{type_id!r} is not a node type id (dotted lower-case words, e.g. 'ai.summarizer')",
        )
    version = r.text("version", required=True)
    if not VERSION_RE.match(version):
        raise NodeTypeError(r.at("version"), f"{version!r} is not MAJOR.MINOR.PATCH")
    title = r.text("title", required=True)
    category_raw = r.text("category", required=True)
    try:
        category = Category(category_raw)
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise NodeTypeError(
            r.at("category"), f"unknown category {category_raw!r}; expected one of: {known}"
        ) from None
    return NodeTypeDescription(
        type_id=type_id,
        version=version,
        title=title,
        category=category,
        description=r.text("description"),
        inputs=_ports(r, "inputs", is_input=True),
        outputs=_ports(r, "outputs", is_input=False),
        config=_config_fields(r),
        idempotent=r.flag("idempotent"),
        reverse_reconstruction=r.flag("reverse_reconstruction"),
        source=source,
        method=_method(r, type_id),
        cacheable=r.flag("cacheable", default=True),
    )


def _method(r: _Reader, type_id: str) -> str:
    method = r.text("method") or type_id
    if not _METHOD_RE.match(method):
        raise NodeTypeError(
            r.at("method"),
            f"{method!r} is not a protocol method name (dotted words, e.g. 'node.run')",
        )
    return method


_METHOD_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
