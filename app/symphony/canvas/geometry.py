"""Node geometry shared by the board and the controller's auto-layout (no Qt).

A node is a fixed-width card: a header, one row per port (inputs on the left, outputs on the
right, side by side), a preview strip for streamed output and a status row. Sizes are in scene
units; the board draws exactly these rectangles, so auto-layout can space nodes without a view.
"""

from __future__ import annotations

from typing import Final

NODE_WIDTH: Final = 232.0
HEADER_HEIGHT: Final = 40.0
PORT_ROW: Final = 22.0
PORT_RADIUS: Final = 5.5
PREVIEW_HEIGHT: Final = 34.0
STATUS_HEIGHT: Final = 22.0
PADDING: Final = 6.0
CORNER: Final = 7.0

NOTE_DEFAULT_SIZE: Final = (220.0, 120.0)
NOTE_MIN_SIZE: Final = (80.0, 40.0)


def node_height(n_inputs: int, n_outputs: int) -> float:
    """Return the height of a node with this many input and output ports."""
    rows = max(n_inputs, n_outputs, 1)
    return HEADER_HEIGHT + PADDING + rows * PORT_ROW + PADDING + PREVIEW_HEIGHT + STATUS_HEIGHT


def port_y(index: int) -> float:
    """Return the y of the centre of port row ``index`` relative to the node's top."""
    return HEADER_HEIGHT + PADDING + (index + 0.5) * PORT_ROW
