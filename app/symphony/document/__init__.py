"""CONTROLLER of the Harmony Board: the editor that owns a melody's undo stack and its commands."""

from symphony.document.editor import EditError, MelodyEditor, Note

__all__ = ["EditError", "MelodyEditor", "Note"]
