"""Node types: descriptions (ports, port types, config schema) from built-ins and extensions.

No Qt. The registry holds *descriptions*; the built-in operators' pure implementations live in
:mod:`symphony.registry.operators`, and extensions run their own types out of process.
"""

from symphony.registry.descriptions import (
    Category,
    ConfigField,
    FieldKind,
    NodeTypeDescription,
    NodeTypeError,
    PortSpec,
    description_from_dict,
)
from symphony.registry.expression import (
    Expression,
    ExpressionError,
    ExpressionSyntaxError,
    compile_expression,
)
from symphony.registry.jsonpath import JsonPath, JsonPathError, JsonPathSyntaxError, parse_path
from symphony.registry.operators import OPERATORS, Operator, OperatorError
from symphony.registry.registry import NodeTypeRegistry, RegistryChanged, default_registry
from symphony.registry.types import PortType, is_compatible, is_subtype, parse_port_type

__all__ = [
    "OPERATORS",
    "Category",
    "ConfigField",
    "Expression",
    "ExpressionError",
    "ExpressionSyntaxError",
    "FieldKind",
    "JsonPath",
    "JsonPathError",
    "JsonPathSyntaxError",
    "NodeTypeDescription",
    "NodeTypeError",
    "NodeTypeRegistry",
    "Operator",
    "OperatorError",
    "PortSpec",
    "PortType",
    "RegistryChanged",
    "compile_expression",
    "default_registry",
    "description_from_dict",
    "is_compatible",
    "is_subtype",
    "parse_path",
    "parse_port_type",
]
