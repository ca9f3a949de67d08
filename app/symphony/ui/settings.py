"""Persistent preferences: QSettings for everything except secrets, the OS keyring for API keys.

QSettings uses organization ``Symphony`` and application ``Symphony AIDE`` (tests point the INI
path at a temporary folder). API keys are stored with :mod:`keyring` under the service the
extension host reads (:data:`~symphony.extension_host.host.KEYRING_SERVICE`) and are never written
to QSettings: the settings only hold the *name* of the keyring entry.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from PySide6.QtCore import QSettings

from symphony.conductor import DEFAULT_KEEP_RUNS

if TYPE_CHECKING:
    from symphony.conductor.models import ModelCatalog

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

_log = logging.getLogger("symphony.ui.settings")


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
    """An OpenAI-compatible server: its base URL, the model to ask for, its key's keyring name.

    ``price_per_call`` and ``price_per_million`` (per 1M tokens, as providers quote it) are what
    its calls cost a run's budget; 0 is free.
    """

    name: str
    base_url: str
    model: str
    secret: str = DEFAULT_SECRET
    price_per_call: float = 0.0
    price_per_million: float = 0.0

    @property
    def price_per_token(self) -> float:
        """The price of one token (``ModelSpec.price_per_token``)."""
        return self.price_per_million / 1_000_000

    def to_json(self) -> dict[str, str | float]:
        """Return the QSettings form (no key: only the keyring entry's name)."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "secret": self.secret,
            "price_per_call": self.price_per_call,
            "price_per_million_tokens": self.price_per_million,
        }


#: What may stand in a host name outside ``[...]``: RFC 3986's reg-name characters; letters
#: beyond ASCII pass separately (internationalized names).
_HOST_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]+")
#: The user information of a URL (``user:password@``), hidden in messages; up to the last "@",
#: since a password may hold "/" or "@" itself.
_USERINFO: Final = re.compile(r"(?<=//).*@")


def validate_base_url(url: str) -> str:
    """Return ``url`` normalized (no trailing slash) or raise :class:`SettingsError`.

    Parameters
    ----------
    url
        What the user typed: an ``http(s)`` URL with a host, an optional valid port and no
        query, fragment or user information.

    Raises
    ------
    SettingsError
        Naming the problem. A user name or password is refused (and never echoed): the base URL
        is stored in the plaintext settings file, the key belongs in the keyring.
    """
    text = url.strip()
    if not text:
        raise SettingsError("base URL: required (e.g. http://localhost:8080/v1)")
    shown = repr(_USERINFO.sub("…@", text))
    # urlsplit silently drops tabs and newlines, so the URL stored would not be the one checked.
    if any(c.isspace() or not c.isprintable() for c in text):
        raise SettingsError(f"base URL: {shown} must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        # an unclosed "[" of an IPv6 host, a port that is no number or out of range
        what = "an invalid port" if "port" in str(e).lower() else f"an invalid host ({e})"
        raise SettingsError(f"base URL: {shown} has {what}") from None
    if "@" in parts.netloc:
        raise SettingsError(
            "base URL: must not contain a user name or password (user:password@…): the "
            "settings file is plain text; put the key in the API key field, which goes to the "
            "keyring"
        )
    if parts.scheme not in ("http", "https"):
        raise SettingsError(f"base URL: {shown} must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise SettingsError(f"base URL: {shown} has no host name")
    if not parts.netloc.startswith("[") and not all(
        _HOST_CHARS.fullmatch(c) or (not c.isascii() and c.isalnum()) for c in host
    ):
        raise SettingsError(f"base URL: {shown} has an invalid host name {host!r}")
    if parts.query or parts.fragment:
        raise SettingsError(f"base URL: {shown} must not have a query or fragment")
    return text.rstrip("/")


#: The labels prices and the budget go by in messages (the Settings dialog's field names).
PRICE_PER_CALL: Final = "price per call"
PRICE_PER_MILLION: Final = "price per 1M tokens"
BUDGET: Final = "budget per run"


def validate_amount(value: str | float, what: str) -> float:
    """Return ``value`` as a finite number ≥ 0 (``""`` is 0), or raise :class:`SettingsError`.

    Parameters
    ----------
    value
        What the user typed (surrounding spaces and a leading ``$`` are allowed), or a number
        read back from the settings file.
    what
        The field's name, which the message starts with (e.g. :data:`PRICE_PER_CALL`).

    Raises
    ------
    SettingsError
        Naming the field and what is wrong: not a number, not finite (the run record and the
        settings file must stay strict JSON), or below 0.
    """
    if isinstance(value, bool):  # a JSON true/false in a hand-edited file is no amount
        raise SettingsError(f"{what}: {value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
        shown = repr(value)
    else:
        text = str(value).strip()
        shown = repr(text)
        text = text.removeprefix("$").strip()
        if not text:
            return 0.0
        try:
            number = float(text)
        except ValueError:
            raise SettingsError(f"{what}: {shown} is not a number (e.g. 0.25)") from None
    if not math.isfinite(number):
        raise SettingsError(f"{what}: {shown} is not a finite number")
    if number < 0:
        raise SettingsError(f"{what}: {shown} must be 0 or more")
    return number or 0.0  # -0.0 is stored as 0


def validate_budget(value: str | float | None) -> float | None:
    """Return the run budget ``value`` names: ``None`` (no limit) for empty or 0, else > 0.

    Raises
    ------
    SettingsError
        As :func:`validate_amount`, naming :data:`BUDGET`.
    """
    if value is None:
        return None
    number = validate_amount(value, BUDGET)
    return number or None


def amount_text(value: float) -> str:
    """Return ``value`` as a user would type it: ``""`` for 0, no exponent, no trailing zeros.

    Read back with :func:`validate_amount`, the text gives ``value`` again.
    """
    if not value:
        return ""
    text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text if float(text) == value else repr(value)


def new_secret() -> str:
    """Return a keyring entry name for a new endpoint: ``openai_api_key.<random hex>``.

    Random, never derived from the endpoint's name or its position: an entry belongs to the
    endpoint it was made for, for good. A name that came round again (a removed endpoint's, a
    renamed one's) would hand a key to whatever still names that entry — a run's model made
    from the old endpoint, or a key left in the keyring because it could not be deleted — and
    so send the new endpoint's key to the old server.
    """
    return f"{DEFAULT_SECRET}.{secrets.token_hex(8)}"


def validate_data_dir(path: str) -> Path:
    """Return ``path`` as an absolute Path if it is an existing writable folder, else raise.

    ``~`` is expanded and a relative path is taken from the current folder now: stored as
    typed, it would name another folder when the app starts from elsewhere.
    """
    text = path.strip()
    if not text:
        raise SettingsError("data folder: required")
    p = Path(text).expanduser().absolute()
    if ".." in p.parts:
        p = p.resolve()  # "a/../b" would be stored as typed otherwise
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
    #: what a run started in the app may spend on model calls (``RunOptions.budget``; ``None``:
    #: no limit), in the unit of the endpoints' prices
    budget: float | None = None

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
        used: set[str] = set()
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and {"name", "base_url", "model"} <= item.keys():
                secret = str(item.get("secret", DEFAULT_SECRET))
                if secret in used:
                    # An entry names one endpoint's key; a second endpoint naming it (an older
                    # file without entry names, a hand edit) starts without a key instead.
                    secret = new_secret()
                used.add(secret)
                name = str(item["name"])
                prefs.endpoints.append(
                    Endpoint(
                        name,
                        str(item["base_url"]),
                        str(item["model"]),
                        secret,
                        _stored_amount(item.get("price_per_call", 0), name, PRICE_PER_CALL),
                        _stored_amount(
                            item.get("price_per_million_tokens", 0), name, PRICE_PER_MILLION
                        ),
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
        try:
            prefs.budget = validate_budget(str(s.value("run/budget", "") or ""))
        except SettingsError as e:
            _log.warning("the settings file's %s; runs have no budget until it is set again", e)
        return prefs

    def save(self, store: QSettings | None = None) -> None:
        """Write the preferences (never a key)."""
        s = store or settings()
        s.setValue("ai/embedded_model", self.embedded_model)
        s.setValue("ai/endpoints", json.dumps([e.to_json() for e in self.endpoints]))
        s.setValue("data/folder", self.data_dir)
        s.setValue("ui/theme", self.theme)
        s.setValue("data/keep_runs", self.keep_runs)
        # as text: repr keeps every digit, and "" (no limit) reads back as None
        s.setValue("run/budget", "" if self.budget is None else repr(float(self.budget)))
        s.sync()

    def effective_data_dir(self) -> Path:
        """Return the chosen data folder, or the default."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()


def _stored_amount(value: Any, endpoint: str, what: str) -> float:
    """Read a price from the settings file; a bad one (a hand edit) is 0, with a warning."""
    try:
        return validate_amount(value, what)
    except SettingsError as e:
        _log.warning(
            "endpoint %r: the settings file's %s; it counts as 0 (free) until it is set again",
            endpoint,
            e,
        )
        return 0.0


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


def catalog_from(prefs: Any) -> ModelCatalog:
    """Return the models runs may use: the embedded one (if on) plus the Settings' endpoints.

    Each endpoint is a model named by the endpoint's name, at the endpoint's prices (per call,
    and per token from its price per 1M tokens), which a run's budget counts; the embedded
    model is free. Its API key stays in the keyring under the endpoint's secret name, fetched
    by the AI Instrument per request. With ``prefs.embedded_model`` off, the embedded model is
    not a model of the runs. An endpoint named like the embedded model (the Settings refuse
    one; an older or hand-edited file may hold one) is left out, with a warning: it would take
    the embedded model's place, and nodes meant to run offline would send their data to a
    server.

    The app and ``symphony run`` both use it, so a melody runs on the same models either way.
    """
    from symphony.conductor.models import EMBEDDED_MODEL, ModelCatalog, ModelSpec

    catalog = ModelCatalog(embedded=bool(getattr(prefs, "embedded_model", True)))
    for ep in getattr(prefs, "endpoints", ()):
        if ep.name == EMBEDDED_MODEL:
            _log.warning(
                "the endpoint %r is not a model of the runs: it has the embedded model's name; "
                "rename it in the Settings",
                ep.name,
            )
            continue
        provider = {
            "kind": "openai",
            "base_url": ep.base_url,
            "model": ep.model,
            "api_key_secret": ep.secret,
        }
        catalog.add(
            ModelSpec(
                ep.name,
                provider,
                slots=4,
                price_per_call=ep.price_per_call,
                price_per_token=ep.price_per_token,
            )
        )
    return catalog
