"""The Settings dialog: AI providers, prices, data folder, budget, theme — validated first.

API keys go to the OS keyring (service ``symphony-aide``) and nowhere else: the field is a
password field, it is empty when the dialog opens (a stored key is only *announced* as stored),
and QSettings receives the keyring entry's name, never the key.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from symphony.conductor.models import EMBEDDED_MODEL
from symphony.ui.settings import (
    MAX_KEEP_RUNS,
    PRICE_PER_CALL,
    PRICE_PER_MILLION,
    THEMES,
    Endpoint,
    Preferences,
    SettingsError,
    amount_text,
    default_data_dir,
    delete_api_key,
    has_api_key,
    new_secret,
    store_api_key,
    validate_amount,
    validate_base_url,
    validate_budget,
    validate_data_dir,
)

_KEY_STORED = "•••••••• (stored in the keyring — type to replace)"
_NO_KEY = "no key stored (optional)"
_log = logging.getLogger("symphony.ui.settings")


class SettingsDialog(QDialog):
    """Edit :class:`Preferences`; :meth:`accept` validates, stores keys, then saves.

    Signals
    -------
    sig_applied(object)
        The saved :class:`Preferences`.
    """

    sig_applied = Signal(object)

    def __init__(self, prefs: Preferences | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
        self.prefs = prefs if prefs is not None else Preferences.load()
        self._endpoints: list[Endpoint] = list(self.prefs.endpoints)
        self._new_keys: dict[int, str] = {}
        self._row = -1

        # AI providers
        self.embedded = QCheckBox("Use the embedded model (offline, SmolLM2)")
        self.embedded.setChecked(self.prefs.embedded_model)
        self.endpoint_list = QListWidget()
        self.endpoint_list.setMaximumHeight(90)
        self.add_button = QPushButton("Add endpoint")
        self.remove_button = QPushButton("Remove")
        self.name_edit = QLineEdit()
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("http://localhost:8080/v1")
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("gpt-4o-mini")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setObjectName("api_key")
        # Typed text, checked on OK (a field naming its problem beats a spin box's silent clamp).
        self.price_call_edit = QLineEdit()
        self.price_call_edit.setObjectName("price_per_call")
        self.price_call_edit.setPlaceholderText("0 (free)")
        self.price_call_edit.setToolTip(
            "What one call to this endpoint costs a run's budget (e.g. 0.002). Empty or 0: free."
        )
        self.price_tokens_edit = QLineEdit()
        self.price_tokens_edit.setObjectName("price_per_million")
        self.price_tokens_edit.setPlaceholderText("0 (free)")
        self.price_tokens_edit.setToolTip(
            "What 1M tokens cost, as providers quote it (e.g. 0.60), charged for the tokens the "
            "model generates, on top of the price per call. Empty or 0: free."
        )
        # per endpoint, as typed: [price per call, price per 1M tokens]
        self._price_texts: list[list[str]] = [
            [amount_text(e.price_per_call), amount_text(e.price_per_million)]
            for e in self._endpoints
        ]
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Base URL", self.url_edit)
        form.addRow("Model", self.model_edit)
        form.addRow("API key", self.key_edit)
        form.addRow("Price per call", self.price_call_edit)
        form.addRow("Price per 1M tokens", self.price_tokens_edit)
        ai = QGroupBox("AI providers")
        al = QVBoxLayout(ai)
        al.addWidget(self.embedded)
        al.addWidget(QLabel("OpenAI-compatible endpoints:"))
        al.addWidget(self.endpoint_list)
        al.addLayout(buttons)
        al.addLayout(form)

        # Data folder and theme
        self.data_edit = QLineEdit(self.prefs.data_dir)
        self.data_edit.setPlaceholderText(str(default_data_dir()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        drow = QHBoxLayout()
        drow.addWidget(self.data_edit, 1)
        drow.addWidget(browse)
        self.theme_combo = QComboBox()
        self.theme_combo.addItems(list(THEMES))
        self.theme_combo.setCurrentText(self.prefs.theme)
        self.keep_runs_spin = QSpinBox()
        self.keep_runs_spin.setObjectName("keep_runs")
        self.keep_runs_spin.setRange(1, MAX_KEEP_RUNS)
        self.keep_runs_spin.setGroupSeparatorShown(True)
        self.keep_runs_spin.setValue(self.prefs.keep_runs)
        self.keep_runs_spin.setToolTip(
            "Ended runs that can still be resumed or edited. Older runs are pruned: their records "
            "and outputs stay in the data folder, their node states go."
        )
        general = QGroupBox("General")
        gl = QFormLayout(general)
        gl.addRow("Data folder", drow)
        gl.addRow("Resumable runs", self.keep_runs_spin)
        self.budget_edit = QLineEdit(amount_text(self.prefs.budget or 0.0))
        self.budget_edit.setObjectName("run_budget")
        self.budget_edit.setPlaceholderText("no limit")
        self.budget_edit.setToolTip(
            "What a run started here may spend on model calls, priced by the endpoints' prices "
            "(the embedded model is free). A call the rest of the budget does not cover fails "
            "its node. Empty or 0: no limit."
        )
        gl.addRow("Budget per run", self.budget_edit)
        gl.addRow("Theme", self.theme_combo)

        self.error_label = QLabel()
        self.error_label.setObjectName("settings_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d64545; font-weight: bold;")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(ai)
        layout.addWidget(general)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        for e in self._endpoints:
            self.endpoint_list.addItem(e.name)
        self.endpoint_list.currentRowChanged.connect(self._select)
        self.add_button.clicked.connect(self.add_endpoint)
        self.remove_button.clicked.connect(self._remove)
        for edit in (
            self.name_edit,
            self.url_edit,
            self.model_edit,
            self.price_call_edit,
            self.price_tokens_edit,
        ):
            edit.textEdited.connect(lambda _t: self._commit_form())
        self.key_edit.textEdited.connect(self._key_typed)
        self._select(0 if self._endpoints else -1)
        if self._endpoints:
            self.endpoint_list.setCurrentRow(0)

    # ---------------------------------------------------------------- endpoints

    def add_endpoint(self) -> None:
        """Add an endpoint with a fresh name and select it."""
        names = {e.name for e in self._endpoints}
        n = 1
        while f"endpoint{n}" in names:
            n += 1
        self._endpoints.append(Endpoint(f"endpoint{n}", "", "", self._fresh_secret()))
        self._price_texts.append(["", ""])
        self.endpoint_list.addItem(f"endpoint{n}")
        self.endpoint_list.setCurrentRow(len(self._endpoints) - 1)

    def _fresh_secret(self) -> str:
        """Return a new keyring entry name (:func:`new_secret`) no endpoint uses, without a key.

        Names are never derived from endpoint names or reused: a renamed endpoint keeps its
        entry, and a removed endpoint's entry is never handed to another endpoint, so nothing
        that still names it can fetch another server's key.
        """
        taken = {e.secret for e in self._endpoints} | {e.secret for e in self.prefs.endpoints}
        # A leftover key under the name would otherwise greet the new endpoint as stored.
        candidates = (new_secret() for _ in itertools.count())
        return next(c for c in candidates if c not in taken and not _has_key(c))

    def _remove(self) -> None:
        row = self.endpoint_list.currentRow()
        if row < 0:
            return
        del self._endpoints[row]
        del self._price_texts[row]
        self._new_keys = {
            (i if i < row else i - 1): k for i, k in self._new_keys.items() if i != row
        }
        self._row = -1
        self.endpoint_list.takeItem(row)
        self._select(self.endpoint_list.currentRow())

    def _select(self, row: int) -> None:
        self._row = row
        enabled = 0 <= row < len(self._endpoints)
        fields = (
            self.name_edit,
            self.url_edit,
            self.model_edit,
            self.key_edit,
            self.price_call_edit,
            self.price_tokens_edit,
        )
        for w in fields:
            w.setEnabled(enabled)
        self.remove_button.setEnabled(enabled)
        if not enabled:
            for w in fields:
                w.clear()
            return
        e = self._endpoints[row]
        self.name_edit.setText(e.name)
        self.url_edit.setText(e.base_url)
        self.model_edit.setText(e.model)
        self.price_call_edit.setText(self._price_texts[row][0])
        self.price_tokens_edit.setText(self._price_texts[row][1])
        # The key is never read back into the field; only whether one is stored is shown.
        self.key_edit.setText(self._new_keys.get(row, ""))
        stored = row in self._new_keys or _has_key(e.secret)
        self.key_edit.setPlaceholderText(_KEY_STORED if stored else _NO_KEY)

    def _commit_form(self) -> None:
        row = self._row
        if not 0 <= row < len(self._endpoints):
            return
        e = self._endpoints[row]
        self._endpoints[row] = replace(
            e,
            name=self.name_edit.text().strip(),
            base_url=self.url_edit.text().strip(),
            model=self.model_edit.text().strip(),
        )
        self._price_texts[row] = [self.price_call_edit.text(), self.price_tokens_edit.text()]
        item = self.endpoint_list.item(row)
        if item is not None:
            item.setText(self._endpoints[row].name or "(unnamed)")

    def _key_typed(self, text: str) -> None:
        if 0 <= self._row < len(self._endpoints):
            if text:
                self._new_keys[self._row] = text
            else:
                self._new_keys.pop(self._row, None)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self.data_edit.text())
        if folder:
            self.data_edit.setText(folder)

    # ---------------------------------------------------------------- validation

    def collect(self) -> Preferences:
        """Validate the form and return the preferences; raises :class:`SettingsError`."""
        self._commit_form()
        endpoints: list[Endpoint] = []
        seen: set[str] = set()
        for i, e in enumerate(self._endpoints, 1):
            where = f"endpoint {i} ({e.name or 'unnamed'})"
            if not e.name:
                raise SettingsError(f"{where}: name: required")
            if e.name in seen:
                raise SettingsError(f"{where}: name: {e.name!r} is used twice")
            if e.name == EMBEDDED_MODEL:
                # Runs name models by endpoint name: this one would stand in for the embedded
                # model, and nodes meant to run offline would send their data to the server.
                raise SettingsError(
                    f"{where}: name: {e.name!r} is the embedded model's name; choose another"
                )
            seen.add(e.name)
            try:
                url = validate_base_url(e.base_url)
            except SettingsError as err:
                raise SettingsError(f"{where}: {err}") from None
            if not e.model:
                raise SettingsError(f"{where}: model: required (the model name the server serves)")
            per_call, per_million = self._price_texts[i - 1]
            try:
                priced = replace(
                    e,
                    base_url=url,
                    price_per_call=validate_amount(per_call, PRICE_PER_CALL),
                    price_per_million=validate_amount(per_million, PRICE_PER_MILLION),
                )
            except SettingsError as err:
                raise SettingsError(f"{where}: {err}") from None
            endpoints.append(priced)
        data = self.data_edit.text().strip()
        if data:
            data = str(validate_data_dir(data))
        theme = self.theme_combo.currentText()
        if theme not in THEMES:
            raise SettingsError(f"theme: {theme!r} is not one of {', '.join(THEMES)}")
        keep = self.keep_runs_spin.value()  # the spin box keeps it within 1..MAX_KEEP_RUNS
        budget = validate_budget(self.budget_edit.text())
        return Preferences(self.embedded.isChecked(), endpoints, data, theme, keep, budget)

    def show_error(self, message: str) -> None:
        """Show a validation message in the dialog."""
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def accept(self) -> None:
        """Validate; on success store new keys in the keyring, save, emit and close."""
        try:
            prefs = self.collect()
        except SettingsError as e:
            self.show_error(str(e))
            return
        try:
            for row, key in self._new_keys.items():
                store_api_key(self._endpoints[row].secret, key)
        except Exception as e:  # keyring backends raise their own errors (no backend, locked)
            self.show_error(f"API key: the OS keyring refused it: {e}")
            return
        self._new_keys.clear()
        self.key_edit.clear()
        prefs.save()
        # Only once the endpoints without them are saved: a key deleted earlier would be lost
        # by a Cancel or a refused save.
        kept = {e.secret for e in prefs.endpoints}
        for secret in sorted({e.secret for e in self.prefs.endpoints} - kept):
            try:
                delete_api_key(secret)
            except Exception as e:  # a locked keyring: the key stays, unused, never reused
                _log.warning("the key of a removed endpoint stays in the keyring: %s", e)
        self.prefs = prefs
        self.show_error("")
        self.sig_applied.emit(prefs)
        super().accept()


def _has_key(secret: str) -> bool:
    try:
        return has_api_key(secret)
    except Exception:  # no keyring backend: nothing can be stored there either
        return False
