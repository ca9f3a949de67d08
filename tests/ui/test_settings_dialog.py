"""Settings: validated preferences in QSettings, API keys only in the keyring."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from PySide6.QtWidgets import QLineEdit
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


def _stored_keys() -> list[str]:
    """Every key the test keyring holds for Symphony, whatever its entry's name."""
    import base64
    import configparser

    from keyrings.alt.escape import escape

    cfg = configparser.RawConfigParser()
    cfg.read(keyring.get_keyring().file_path)  # type: ignore[attr-defined]
    section = escape(KEYRING_SERVICE)
    if not cfg.has_section(section):
        return []
    return sorted(base64.b64decode(v).decode() for _, v in cfg.items(section))


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
    ini = settings_file(settings_dir)
    text = ini.read_text()
    assert SECRET_KEY not in text
    assert "0123456789abcdef" not in text
    prefs = st.Preferences.load()
    secret = prefs.endpoints[0].secret
    assert secret.startswith(f"{st.DEFAULT_SECRET}.")  # an entry the AI Instrument may ask for
    assert keyring.get_password(KEYRING_SERVICE, secret) == SECRET_KEY
    assert prefs.endpoints == [
        st.Endpoint("endpoint1", "http://localhost:8080/v1", "llama-3", secret)
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
    assert keyring.get_password(KEYRING_SERVICE, secret) == SECRET_KEY
    assert _stored_keys() == [SECRET_KEY]


@pytest.mark.parametrize(
    ("url", "model", "message"),
    [
        ("", "m", "base URL: required"),
        ("ftp://host/v1", "m", "must start with http:// or https://"),
        ("http:///v1", "m", "has no host name"),
        ("http://host:99999/v1", "m", "has an invalid port"),
        ("http://host/v1?x=1", "m", "must not have a query"),
        ("http://host/v1", "", "model: required"),
        ("http://[::1:8080/v1", "m", "has an invalid host (Invalid IPv6 URL)"),
        ("http://[not-an-address]/v1", "m", "has an invalid host"),
        ("http://host:port/v1", "m", "has an invalid port"),
        ("http://local host:8080/v1", "m", "must not contain spaces or control characters"),
        ("http://local\thost:8080/v1", "m", "must not contain spaces or control characters"),
        ("http://a<b>/v1", "m", "has an invalid host name 'a<b>'"),
        ("http://user:pw@host/v1", "m", "must not contain a user name or password"),
        ("http://token@host/v1", "m", "must not contain a user name or password"),
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
    assert _stored_keys() == []
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


@pytest.mark.parametrize(
    "url",
    [
        "http://user:SECRETPASS@localhost:8080/v1",
        "ftp://user:SECRETPASS@localhost/v1",  # refused for its scheme: still not echoed
        "http://user:SECRETPASS@local host/v1",
        "http://user:SECRET/PASS@localhost:99999/v1",
    ],
)
def test_a_password_in_the_base_url_is_refused_and_never_shown(
    qtbot: QtBot, settings_dir: Path, url: str
) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, url)
    d.accept()
    assert d.result() != d.DialogCode.Accepted
    assert d.error_label.text().startswith("endpoint 1 (endpoint1): base URL: ")
    assert "SECRET" not in d.error_label.text()
    assert "PASS" not in d.error_label.text()
    ini = settings_file(settings_dir)
    assert not ini.exists() or "SECRET" not in ini.read_text()


def test_an_endpoint_may_not_take_the_embedded_models_name(qtbot: QtBot) -> None:
    from symphony.conductor.models import EMBEDDED_MODEL

    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1")
    _rename(d, EMBEDDED_MODEL)
    d.accept()
    assert d.result() != d.DialogCode.Accepted
    assert d.error_label.text() == (
        f"endpoint 1 ({EMBEDDED_MODEL}): name: {EMBEDDED_MODEL!r} is the embedded model's "
        "name; choose another"
    )
    _rename(d, "smollm2")  # like it, but not it
    _accept(d)


@pytest.mark.parametrize("typed", ["reldata", "./reldata/", "sub/../reldata", "~/reldata"])
def test_a_relative_data_folder_is_stored_absolute(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    home = tmp_path / "home"
    (home / "reldata").mkdir(parents=True)
    (home / "sub").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    d = _dialog(qtbot)
    d.data_edit.setText(typed)
    _accept(d)
    assert st.Preferences.load().data_dir == str(home / "reldata")
    monkeypatch.chdir("/")  # the next start, from elsewhere, opens the same Pit
    assert st.Preferences.load().effective_data_dir() == home / "reldata"


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
    assert _stored_keys() == ["second"]


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


def test_a_new_endpoint_skips_a_leftover_key_in_the_keyring(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    st.store_api_key(st.DEFAULT_SECRET, "left over by something else")
    st.store_api_key(f"{st.DEFAULT_SECRET}.endpoint1", "also left over")
    # Fault: the name generator comes up with the leftovers' names first.
    names = iter([st.DEFAULT_SECRET, f"{st.DEFAULT_SECRET}.endpoint1", "openai_api_key.fresh"])
    monkeypatch.setattr("symphony.ui.settings_dialog.new_secret", lambda: next(names))
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1")
    assert "no key stored" in d.key_edit.placeholderText()
    _accept(d)
    assert _secrets() == {"endpoint1": "openai_api_key.fresh"}
    assert keyring.get_password(KEYRING_SERVICE, st.DEFAULT_SECRET) == "left over by something else"


def test_every_endpoint_gets_its_own_new_keyring_entry(qtbot: QtBot) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1", key="KEY-A")
    _fill_endpoint(d, "http://b/v1", key="KEY-B")
    _accept(d)
    first = _secrets()
    # The first endpoint does not get the bare default name: a later one could not avoid it
    # after a removal (nothing would remember that it was used).
    assert st.DEFAULT_SECRET not in first.values()
    assert all(s.startswith(f"{st.DEFAULT_SECRET}.") for s in first.values())
    assert len(set(first.values())) == 2


def test_a_removed_endpoints_entry_is_never_given_to_a_new_endpoint(qtbot: QtBot) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://old.example/v1", key="KEY-OLD")
    _accept(d)
    old = _secrets()["endpoint1"]
    # Remove it (its key goes on OK), then, in later sessions, add endpoints again: none may
    # take its entry, or anything still naming the entry would send the new key to the old URL.
    d2 = _dialog(qtbot)
    d2.endpoint_list.setCurrentRow(0)
    d2.remove_button.click()
    _accept(d2)
    assert keyring.get_password(KEYRING_SERVICE, old) is None
    for url in ("http://new.example/v1", "http://newer.example/v1"):
        d3 = _dialog(qtbot)
        _fill_endpoint(d3, url, key="KEY-NEW")
        _accept(d3)
    assert old not in _secrets().values()
    assert keyring.get_password(KEYRING_SERVICE, old) is None


def test_endpoints_sharing_an_entry_in_the_settings_file_do_not_share_a_key(
    settings_dir: Path,
) -> None:
    # An older settings file (no entry names) or a hand edit: two endpoints, one entry.
    st.settings().setValue(
        "ai/endpoints",
        '[{"name": "a", "base_url": "http://a/v1", "model": "m"},'
        ' {"name": "b", "base_url": "http://b/v1", "model": "m", "secret": "openai_api_key"}]',
    )
    st.store_api_key(st.DEFAULT_SECRET, "KEY-A")
    a, b = st.Preferences.load().endpoints
    assert a.secret == st.DEFAULT_SECRET  # the first keeps its key
    assert b.secret != st.DEFAULT_SECRET
    assert not st.has_api_key(b.secret)


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


def _type(edit: QLineEdit, text: str) -> None:
    edit.setText(text)
    edit.textEdited.emit(text)


def test_endpoint_prices_and_the_run_budget_are_stored_and_shown_again(
    qtbot: QtBot, settings_dir: Path
) -> None:
    d = _dialog(qtbot)
    assert d.budget_edit.text() == ""  # no limit by default
    _fill_endpoint(d, "https://api.example.com/v1")
    _type(d.price_call_edit, "0.002")
    _type(d.price_tokens_edit, "$0.60")  # as a price list reads
    _fill_endpoint(d, "http://localhost:8080/v1")  # left free
    d.budget_edit.setText(" 1.5 ")
    _accept(d)
    paid, free = st.Preferences.load().endpoints
    assert (paid.price_per_call, paid.price_per_million) == (0.002, 0.6)
    assert paid.price_per_token == pytest.approx(0.6e-6)
    assert (free.price_per_call, free.price_per_million) == (0.0, 0.0)
    assert st.Preferences.load().budget == 1.5
    # shown again as typed (no exponent, no float noise), per endpoint
    again = _dialog(qtbot)
    assert again.budget_edit.text() == "1.5"
    again.endpoint_list.setCurrentRow(0)
    assert (again.price_call_edit.text(), again.price_tokens_edit.text()) == ("0.002", "0.6")
    again.endpoint_list.setCurrentRow(1)
    assert (again.price_call_edit.text(), again.price_tokens_edit.text()) == ("", "")
    # emptied: no limit again
    again.budget_edit.setText("0")
    _accept(again)
    assert st.Preferences.load().budget is None


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("price_call_edit", "abc", "endpoint 1 (endpoint1): price per call: 'abc' is not a number"),
        ("price_call_edit", "-0.01", "endpoint 1 (endpoint1): price per call: '-0.01' must be 0"),
        ("price_tokens_edit", "nan", "endpoint 1 (endpoint1): price per 1M tokens: 'nan' is not a"),
        ("price_tokens_edit", "inf", "endpoint 1 (endpoint1): price per 1M tokens: 'inf' is not a"),
        ("budget_edit", "1e999", "budget per run: '1e999' is not a finite number"),
        ("budget_edit", "-2", "budget per run: '-2' must be 0 or more"),
        ("budget_edit", "lots", "budget per run: 'lots' is not a number"),
    ],
)
def test_a_bad_price_or_budget_names_the_field_and_stores_nothing(
    qtbot: QtBot, settings_dir: Path, field: str, text: str, message: str
) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1")
    edit = getattr(d, field)
    if field == "budget_edit":
        edit.setText(text)
    else:
        _type(edit, text)
    d.accept()
    assert d.result() != d.DialogCode.Accepted
    assert d.error_label.text().startswith(message), d.error_label.text()
    assert not settings_file(settings_dir).exists()  # nothing was saved


def test_a_price_typed_for_one_endpoint_stays_with_it(qtbot: QtBot) -> None:
    d = _dialog(qtbot)
    _fill_endpoint(d, "http://a/v1")
    _type(d.price_call_edit, "0.5")
    _fill_endpoint(d, "http://b/v1")
    assert d.price_call_edit.text() == ""  # the new endpoint does not inherit it
    _type(d.price_call_edit, "0.1")
    d.endpoint_list.setCurrentRow(0)
    d.remove_button.click()  # the remaining endpoint keeps its own price
    assert d.price_call_edit.text() == "0.1"
    _accept(d)
    assert [e.price_per_call for e in st.Preferences.load().endpoints] == [0.1]


def test_settings_files_without_prices_load_as_free(settings_dir: Path) -> None:
    st.settings().setValue(
        "ai/endpoints", '[{"name": "a", "base_url": "http://a/v1", "model": "m", "secret": "s"}]'
    )
    (a,) = st.Preferences.load().endpoints
    assert (a.price_per_call, a.price_per_million) == (0.0, 0.0)
    assert st.Preferences.load().budget is None


def test_bad_stored_prices_and_budget_count_as_free_with_a_warning(
    settings_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A hand edit: NaN (which json reads), a negative price, text for a budget.
    st.settings().setValue(
        "ai/endpoints",
        '[{"name": "a", "base_url": "http://a/v1", "model": "m", "secret": "s",'
        ' "price_per_call": NaN, "price_per_million_tokens": -3}]',
    )
    st.settings().setValue("run/budget", "plenty")
    with caplog.at_level("WARNING", logger="symphony.ui.settings"):
        prefs = st.Preferences.load()
    (a,) = prefs.endpoints
    assert (a.price_per_call, a.price_per_million) == (0.0, 0.0)
    assert prefs.budget is None
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert "endpoint 'a': the settings file's price per call: nan is not a finite" in warnings
    assert "price per 1M tokens: -3 must be 0 or more" in warnings
    assert "budget per run: 'plenty' is not a number" in warnings
