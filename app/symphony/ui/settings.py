"""Persistent preferences: QSettings for everything except secrets, the OS keyring for API keys.

QSettings uses organization ``Symphony`` and application ``Symphony AIDE`` (tests point the INI
path at a temporary folder). API keys are stored with :mod:`keyring` under the service the
extension host reads (:data:`~symphony.extension_host.host.KEYRING_SERVICE`) and are never written
to QSettings: the settings only hold the *name* of the keyring entry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from PySide6.QtCore import QSettings

from symphony.conductor import DEFAULT_KEEP_RUNS

ORGANIZATION: Final = "Symphony"
APPLICATION: Final = "Symphony AIDE"
#: Same value as ``symphony.extension_host.host.KEYRING_SERVICE`` (not imported: the host module
#: pulls the protocol stack in, which the settings dialog does not need at start-up).
KEYRING_SERVICE: Final = "symphony-aide"
DEFAULT_SECRET: Final = "openai_api_key"
MAX_RECENT: Final = 10
THEMES: Final = ("light", "dark")
#: The most runs the Settings let stay resumable (their node states stay in memory).
MAX_KEEP_RUNS: Final = 100_000


def settings() -> QSettings:
    """Return the application's QSettings (INI format, user scope)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


def default_data_dir() -> Path:
    """Return the Pit's default data folder (``$XDG_DATA_HOME/symphony/pit``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "symphony" / "pit"


class SettingsError(ValueError):
    """A preference value that cannot be accepted; the message names the field and the problem."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An OpenAI-compatible server: its base URL, the model to ask for, its key's keyring name."""

    name: str
    base_url: str
    model: str
    secret: str = DEFAULT_SECRET

    def to_json(self) -> dict[str, str]:
        """Return the QSettings form (no key: only the keyring entry's name)."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "secret": self.secret,
        }


def validate_base_url(url: str) -> str:
    """Return ``url`` normalized (no trailing slash) or raise :class:`SettingsError`."""
    text = url.strip()
    if not text:
        raise SettingsError("base URL: required (e.g. http://localhost:8080/v1)")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise SettingsError(f"base URL: {text!r} must start with http:// or https://")
    if not parts.hostname:
        raise SettingsError(f"base URL: {text!r} has no host name")
    if parts.query or parts.fragment:
        raise SettingsError(f"base URL: {text!r} must not have a query or fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SettingsError(f"base URL: {text!r} has an invalid port") from None
    return text.rstrip("/")


def validate_data_dir(path: str) -> Path:
    """Return ``path`` as a Path if it is an existing writable folder, else raise."""
    text = path.strip()
    if not text:
        raise SettingsError("data folder: required")
    p = Path(text).expanduser()
    if not p.exists():
        raise SettingsError(f"data folder: {p} does not exist")
    if not p.is_dir():
        raise SettingsError(f"data folder: {p} is not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise SettingsError(f"data folder: {p} is not writable")
    return p


@dataclass(slots=True)
class Preferences:
    """What the settings dialog edits (everything but the API keys themselves)."""

    embedded_model: bool = True
    endpoints: list[Endpoint] = field(default_factory=list)
    data_dir: str = ""
    theme: str = "light"
    #: ended runs whose progress stays resumable (``Conductor.keep_runs``)
    keep_runs: int = DEFAULT_KEEP_RUNS

    @classmethod
    def load(cls, store: QSettings | None = None) -> Preferences:
        """Read the preferences (defaults for anything missing or unreadable)."""
        s = store or settings()
        prefs = cls()
        prefs.embedded_model = _as_bool(s.value("ai/embedded_model", True))
        raw = s.value("ai/endpoints", "[]")
        try:
            items = json.loads(str(raw))
        except ValueError:
            items = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and {"name", "base_url", "model"} <= item.keys():
                prefs.endpoints.append(
                    Endpoint(
                        str(item["name"]),
                        str(item["base_url"]),
                        str(item["model"]),
                        str(item.get("secret", DEFAULT_SECRET)),
                    )
                )
        prefs.data_dir = str(s.value("data/folder", "") or "")
        theme = str(s.value("ui/theme", "light"))
        prefs.theme = theme if theme in THEMES else "light"
        try:
            keep = int(str(s.value("data/keep_runs", DEFAULT_KEEP_RUNS)))
        except ValueError:
            keep = DEFAULT_KEEP_RUNS
        prefs.keep_runs = keep if 1 <= keep <= MAX_KEEP_RUNS else DEFAULT_KEEP_RUNS
        return prefs

    def save(self, store: QSettings | None = None) -> None:
        """Write the preferences (never a key)."""
        s = store or settings()
        s.setValue("ai/embedded_model", self.embedded_model)
        s.setValue("ai/endpoints", json.dumps([e.to_json() for e in self.endpoints]))
        s.setValue("data/folder", self.data_dir)
        s.setValue("ui/theme", self.theme)
        s.setValue("data/keep_runs", self.keep_runs)
        s.sync()

    def effective_data_dir(self) -> Path:
        """Return the chosen data folder, or the default."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def store_api_key(secret: str, key: str) -> None:
    """Store ``key`` in the OS keyring under ``secret`` (service ``symphony-aide``)."""
    import keyring

    keyring.set_password(KEYRING_SERVICE, secret, key)


def has_api_key(secret: str) -> bool:
    """Whether the keyring holds a key under ``secret`` (the key itself is not returned)."""
    import keyring

    return keyring.get_password(KEYRING_SERVICE, secret) is not None


def delete_api_key(secret: str) -> None:
    """Remove the key stored under ``secret``, if any."""
    import keyring
    from keyring.errors import PasswordDeleteError

    try:
        keyring.delete_password(KEYRING_SERVICE, secret)
    except PasswordDeleteError:
        pass


def recent_files(store: QSettings | None = None) -> list[str]:
    """Recently opened files, newest first."""
    s = store or settings()
    raw = s.value("recent/files", "[]")
    try:
        items = json.loads(str(raw))
    except ValueError:
        return []
    return [str(i) for i in items if isinstance(i, str)] if isinstance(items, list) else []


def add_recent_file(path: str | Path, store: QSettings | None = None) -> list[str]:
    """Put ``path`` first in the recent files (deduplicated, at most :data:`MAX_RECENT`)."""
    s = store or settings()
    p = str(Path(path).resolve())
    items = [p] + [i for i in recent_files(s) if i != p]
    items = items[:MAX_RECENT]
    s.setValue("recent/files", json.dumps(items))
    return items


def clear_recent_files(store: QSettings | None = None) -> None:
    """Forget the recent files."""
    (store or settings()).setValue("recent/files", "[]")
