"""Melodies: the workflow model, its events, validation and file format. No Qt.

Views subscribe to :attr:`Melody.events`; editors change a melody only through its mutation
methods, each of which returns what is needed to invert it exactly.
"""

from symphony.workflow.conditions import CONDITION_NAMES, condition_holds, condition_variables
from symphony.workflow.events import (
    BreakpointChanged,
    EventBus,
    LinkAdded,
    LinkChanged,
    LinkRemoved,
    MelodyEvent,
    MelodyPropertiesChanged,
    NodeAdded,
    NodeConfigChanged,
    NodeMoved,
    NodePolicyChanged,
    NodeRemoved,
    NodeRenamed,
)
from symphony.workflow.fileformat import (
    FORMAT_VERSION,
    MelodyFormatError,
    dumps,
    load,
    loads,
    save,
    to_document,
)
from symphony.workflow.model import (
    DependencyKind,
    Importance,
    Link,
    Melody,
    MelodyError,
    Node,
    NodePolicy,
    RemovedNode,
)
from symphony.workflow.templates import TemplateInfo, list_templates, load_template
from symphony.workflow.validation import (
    CycleError,
    Issue,
    Severity,
    check_link,
    find_cycles,
    topological_order,
    validate,
)

__all__ = [
    "CONDITION_NAMES",
    "FORMAT_VERSION",
    "BreakpointChanged",
    "CycleError",
    "DependencyKind",
    "EventBus",
    "Importance",
    "Issue",
    "Link",
    "LinkAdded",
    "LinkChanged",
    "LinkRemoved",
    "Melody",
    "MelodyError",
    "MelodyEvent",
    "MelodyFormatError",
    "MelodyPropertiesChanged",
    "Node",
    "NodeAdded",
    "NodeConfigChanged",
    "NodeMoved",
    "NodePolicy",
    "NodePolicyChanged",
    "NodeRemoved",
    "NodeRenamed",
    "RemovedNode",
    "Severity",
    "TemplateInfo",
    "check_link",
    "condition_holds",
    "condition_variables",
    "dumps",
    "find_cycles",
    "list_templates",
    "load",
    "load_template",
    "loads",
    "save",
    "to_document",
    "topological_order",
    "validate",
]
