"""Model listeners that do not keep Qt objects alive or call into deleted ones.

The melody and the registry are plain Python and may outlive the widgets that watch them (a
board tab closed while its editor stays open). A listener made here holds its Qt owner weakly
and unsubscribes itself the first time it finds the owner gone or its C++ half deleted.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject

__all__ = ["weak_listener"]

OwnerT = TypeVar("OwnerT", bound=QObject)


def weak_listener(
    owner: OwnerT,
    method: Callable[[OwnerT, Any], None],
    unsubscribe: Callable[[Callable[[Any], None]], None],
) -> Callable[[Any], None]:
    """Return ``listener(event)`` that calls ``method(owner, event)`` while ``owner`` lives.

    Parameters
    ----------
    owner
        The Qt object that reacts to the events.
    method
        The unbound method (or function) to call with the owner and the event.
    unsubscribe
        Removes the listener from its source, called with the listener once the owner is gone.
    """
    ref = weakref.ref(owner)

    def listener(event: Any) -> None:
        target = ref()
        if target is None or not shiboken6.isValid(target):
            unsubscribe(listener)
            return
        method(target, event)

    return listener
