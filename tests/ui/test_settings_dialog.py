"""Settings: validated preferences in QSettings, API keys only in the keyring."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from pytestqt.qtbot import QtBot

from symphony.extension_host.host import KEYRING_SERVICE
from symphony.ui import settings as st
from symphony.ui.settings_dialog import SettingsDialog
from tests.ui.conftest import settings_file

SECRET_KEY = "sk-test-0123456789abcdef-SECRET"


def _dialog(qtbot: QtBot) -> SettingsDialog:
    d = SettingsDialog(st.Preferences.load())
    qtbot.addWidget(d)
    return d


def _fill_endpoint(d: SettingsDialog, url: str, model: str = "llama-3", key: str = "") -> None:
    d.add_endpoint()
    d.url_edit.setText(url)
    d.url_edit.textEdited.emit(url)
    d.model_edit.setText(model)
    d.model_edit.textEdited.emit(model)
    if key:
        d.key_edit.setText(key)
        d.key_edit.textEdited.emit(key)


def test_service_name_matches_the_extension_host() -> None:
    assert st.KEYRING_SERVICE == KEYRING_SERVICE


def test_api_key_goes_to_the_keyring_and_never_to_qsettings(
    qtbot: QtBot, settings_dir: Path, tmp_path: Path
) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://localhost:8080/v1/", key=SECRET_KEY)
    d.data_edit.setText(str(tmp_path))
    d.theme_combo.setCurrentText("dark")
    applied: list[st.Preferences] = []
    d.sig_applied.connect(applied.append)
    d.accept()
    assert d.result() == d.DialogCode.Accepted, d.error_label.text()
    assert keyring.get_password(KEYRING_SERVICE, st.DEFAULT_SECRET) == SECRET_KEY
    ini = settings_file(settings_dir)
    text = ini.read_text()
    assert SECRET_KEY not in text
    assert "0123456789abcdef" not in text
    prefs = st.Preferences.load()
    assert prefs.endpoints == [
        st.Endpoint("endpoint1", "http://localhost:8080/v1", "llama-3", st.DEFAULT_SECRET)
    ]
    assert prefs.data_dir == str(tmp_path)
    assert prefs.theme == "dark"
    assert applied
    assert applied[0].theme == "dark"
    # Opened again, the dialog never shows the key: the field is empty, a mask says it is stored.
    again = _dialog(qtbot)
    assert again.key_edit.text() == ""
    assert again.key_edit.echoMode() == again.key_edit.EchoMode.Password
    assert "stored in the keyring" in again.key_edit.placeholderText()
    assert SECRET_KEY not in again.findChild(type(again.key_edit), "api_key").text()
    # Accepting without typing a key keeps the stored one.
    again.accept()
    assert keyring.get_password(KEYRING_SERVICE, st.DEFAULT_SECRET) == SECRET_KEY


@pytest.mark.parametrize(
    ("url", "model", "message"),
    [
        ("", "m", "base URL: required"),
        ("ftp://host/v1", "m", "must start with http:// or https://"),
        ("http:///v1", "m", "has no host name"),
        ("http://host:99999/v1", "m", "has an invalid port"),
        ("http://host/v1?x=1", "m", "must not have a query"),
        ("http://host/v1", "", "model: required"),
    ],
)
def test_invalid_endpoint_shows_the_error(
    qtbot: QtBot, settings_dir: Path, url: str, model: str, message: str
) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, url, model, key=SECRET_KEY)
    d.accept()
    assert d.result() != d.DialogCode.Accepted
    assert d.error_label.isVisibleTo(d)
    assert message in d.error_label.text()
    assert "endpoint 1 (endpoint1)" in d.error_label.text()
    # Nothing was stored: neither the key nor the preferences.
    assert keyring.get_password(KEYRING_SERVICE, st.DEFAULT_SECRET) is None
    ini = settings_file(settings_dir)
    assert not ini.exists() or "endpoint1" not in ini.read_text()


def test_duplicate_endpoint_names_are_refused(qtbot: QtBot) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1")
    _fill_endpoint(d, "http://b/v1")
    d.name_edit.setText("endpoint1")
    d.name_edit.textEdited.emit("endpoint1")
    d.accept()
    assert "name: 'endpoint1' is used twice" in d.error_label.text()


@pytest.mark.parametrize("what", ["missing", "file"])
def test_invalid_data_folder_shows_the_error(qtbot: QtBot, tmp_path: Path, what: str) -> None:
    target = tmp_path / "nothing-here"
    if what == "file":
        target.write_text("x")
    d = _dialog(qtbot)
    d.data_edit.setText(str(target))
    d.accept()
    assert d.result() != d.DialogCode.Accepted
    expected = "does not exist" if what == "missing" else "is not a folder"
    assert f"data folder: {target} {expected}" == d.error_label.text()


def test_removing_an_endpoint_and_its_pending_key(qtbot: QtBot) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1", key="first")
    _fill_endpoint(d, "http://b/v1", key="second")
    d.endpoint_list.setCurrentRow(0)
    d.remove_button.click()
    d.accept()
    assert d.result() == d.DialogCode.Accepted, d.error_label.text()
    prefs = st.Preferences.load()
    assert [e.base_url for e in prefs.endpoints] == ["http://b/v1"]
    secret = prefs.endpoints[0].secret
    assert keyring.get_password(KEYRING_SERVICE, secret) == "second"
    assert keyring.get_password(KEYRING_SERVICE, st.DEFAULT_SECRET) is None


def test_unreadable_settings_fall_back_to_defaults(settings_dir: Path) -> None:
    s = st.settings()
    s.setValue("ai/endpoints", "{not json")
    s.setValue("ui/theme", "purple")
    s.setValue("recent/files", "[1, 2")
    prefs = st.Preferences.load()
    assert prefs.endpoints == []
    assert prefs.theme == "light"
    assert st.recent_files() == []


def test_resumable_runs_are_kept_in_the_settings(qtbot: QtBot, settings_dir: Path) -> None:
    from symphony.conductor import DEFAULT_KEEP_RUNS

    d = _dialog(qtbot)
    assert d.keep_runs_spin.value() == DEFAULT_KEEP_RUNS
    d.keep_runs_spin.setValue(0)  # below the range: the spin box holds its minimum
    assert d.keep_runs_spin.value() == 1
    d.keep_runs_spin.setValue(250)
    d.accept()
    assert d.result() == d.DialogCode.Accepted, d.error_label.text()
    assert st.Preferences.load().keep_runs == 250
    assert _dialog(qtbot).keep_runs_spin.value() == 250


@pytest.mark.parametrize("stored", ["many", "0", "-5", str(st.MAX_KEEP_RUNS + 1), "2.5"])
def test_a_bad_stored_number_of_resumable_runs_falls_back_to_the_default(
    settings_dir: Path, stored: str
) -> None:
    from symphony.conductor import DEFAULT_KEEP_RUNS

    st.settings().setValue("data/keep_runs", stored)
    assert st.Preferences.load().keep_runs == DEFAULT_KEEP_RUNS


def _accept(d: SettingsDialog) -> None:
    d.accept()
    assert d.result() == d.DialogCode.Accepted, d.error_label.text()


def _secrets() -> dict[str, str]:
    return {e.name: e.secret for e in st.Preferences.load().endpoints}


def _rename(d: SettingsDialog, name: str) -> None:
    d.name_edit.setText(name)
    d.name_edit.textEdited.emit(name)


def test_a_new_endpoint_never_takes_a_renamed_endpoints_key(qtbot: QtBot) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://localhost:8080/v1", key="KEY-LOCAL")
    _rename(d, "local")
    _fill_endpoint(d, "https://api.example.com/v1", key="KEY-WORK")
    _rename(d, "work")  # the name "endpoint1" is free again, its keyring entry is not
    _accept(d)
    # later, a third endpoint
    again = _dialog(qtbot)
    _fill_endpoint(again, "https://cloud.example.com/v1")
    assert again.name_edit.text() == "endpoint1"
    assert "no key stored" in again.key_edit.placeholderText()
    again.key_edit.setText("KEY-CLOUD")
    again.key_edit.textEdited.emit("KEY-CLOUD")
    _rename(again, "cloud")
    _accept(again)
    secrets = _secrets()
    assert len(set(secrets.values())) == 3, secrets
    stored = {n: keyring.get_password(KEYRING_SERVICE, s) for n, s in secrets.items()}
    assert stored == {"local": "KEY-LOCAL", "work": "KEY-WORK", "cloud": "KEY-CLOUD"}


def test_a_new_endpoint_skips_a_leftover_key_in_the_keyring(qtbot: QtBot) -> None:
    st.store_api_key(st.DEFAULT_SECRET, "left over by something else")
    st.store_api_key(f"{st.DEFAULT_SECRET}.endpoint1", "also left over")
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1")
    assert "no key stored" in d.key_edit.placeholderText()
    _accept(d)
    assert _secrets() == {"endpoint1": f"{st.DEFAULT_SECRET}.endpoint2"}
    assert keyring.get_password(KEYRING_SERVICE, st.DEFAULT_SECRET) == "left over by something else"


def test_removing_an_endpoint_deletes_its_key_on_ok_only(qtbot: QtBot) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1", key="KEY-A")
    _fill_endpoint(d, "http://b/v1", key="KEY-B")
    _accept(d)
    secrets = _secrets()
    # Cancel: the removal and its key deletion do not happen
    cancelled = _dialog(qtbot)
    cancelled.endpoint_list.setCurrentRow(0)
    cancelled.remove_button.click()
    cancelled.reject()
    assert _secrets() == secrets
    assert keyring.get_password(KEYRING_SERVICE, secrets["endpoint1"]) == "KEY-A"
    # OK: the removed endpoint's key goes; a new endpoint added meanwhile does not get its name
    d2 = _dialog(qtbot)
    d2.endpoint_list.setCurrentRow(0)
    d2.remove_button.click()
    _fill_endpoint(d2, "http://c/v1")
    _accept(d2)
    after = _secrets()
    assert keyring.get_password(KEYRING_SERVICE, secrets["endpoint1"]) is None
    assert keyring.get_password(KEYRING_SERVICE, after["endpoint2"]) == "KEY-B"
    assert after["endpoint1"] not in secrets.values()
    assert keyring.get_password(KEYRING_SERVICE, after["endpoint1"]) is None
