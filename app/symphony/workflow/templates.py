"""Built-in melody templates, shipped in ``symphony/resources/templates/*.melody``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from symphony.workflow.fileformat import loads
from symphony.workflow.model import Melody

__all__ = ["TemplateInfo", "list_templates", "load_template", "template_text"]

_PACKAGE = "symphony.resources"
_FOLDER = "templates"
_SUFFIX = ".melody"


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """A template as the "New melody" dialog lists it.

    Attributes
    ----------
    id
        The file's stem (``idea_to_plan``); pass it to :func:`load_template`.
    name, description
        From the file.
    """

    id: str
    name: str
    description: str


def _folder() -> Traversable:
    return resources.files(_PACKAGE).joinpath(_FOLDER)


def template_ids() -> list[str]:
    """Return the ids of the shipped templates, sorted."""
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in _folder().iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIX)
    )


def template_text(template_id: str) -> str:
    """Return the file text of template ``template_id``.

    Raises
    ------
    KeyError
        If there is no such template; the message lists the known ones.
    """
    if template_id not in template_ids():
        known = ", ".join(template_ids())
        raise KeyError(f"no template {template_id!r} (known: {known})")
    return _folder().joinpath(template_id + _SUFFIX).read_text(encoding="utf-8")


def load_template(template_id: str) -> Melody:
    """Return a new melody built from template ``template_id``."""
    return loads(template_text(template_id), source=template_id + _SUFFIX)


def list_templates() -> list[TemplateInfo]:
    """Return every shipped template's id, name and description, sorted by id."""
    infos = []
    for template_id in template_ids():
        melody = load_template(template_id)
        infos.append(TemplateInfo(template_id, melody.name, melody.description))
    return infos
