"""packaging/install.sh into a temporary HOME, from a fake release folder (no bundle is built)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import PACKAGING


def _release(folder: Path, marker: str = "v1") -> Path:
    """A release folder like the tarball's, with a shell script as the executable."""
    app = folder / "Symphony"
    (app / "_internal").mkdir(parents=True)
    exe = app / "symphony"
    exe.write_text(f'#!/bin/sh\necho "fake symphony {marker} $*"\n', encoding="utf-8")
    exe.chmod(0o755)
    (app / "_internal" / "marker.txt").write_text(marker, encoding="utf-8")
    shutil.copy(PACKAGING / "install.sh", folder / "install.sh")
    shutil.copy(PACKAGING / "symphony.desktop", folder / "symphony.desktop")
    shutil.copy(PACKAGING / "icons" / "symphony.png", folder / "symphony.png")
    shutil.copy(PACKAGING / "icons" / "symphony.svg", folder / "symphony.svg")
    return folder


def _run(
    release: Path, home: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    out = subprocess.run(
        ["bash", str(release / "install.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(home),
        timeout=60,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def _exec_argv(desktop: Path) -> list[str]:
    """Parse the Exec key as the Desktop Entry spec says (string escapes, then quoting)."""
    line = next(x for x in desktop.read_text("utf-8").splitlines() if x.startswith("Exec="))
    value = line[len("Exec=") :]
    # string-level escapes first
    unescaped, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            unescaped.append(
                {"s": " ", "n": "\n", "t": "\t", "r": "\r"}.get(value[i + 1], value[i + 1])
            )
            if value[i + 1] not in "sntr\\":
                unescaped.insert(-1, "\\")
            i += 2
        else:
            unescaped.append(value[i])
            i += 1
    text = "".join(unescaped)
    # then the quoting rules: inside "...", \" \` \$ \\ stand for the character
    argv, cur, quoted, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if quoted and c == "\\" and i + 1 < len(text) and text[i + 1] in '"`$\\':
            cur += text[i + 1]
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == " " and not quoted:
            if cur:
                argv.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        argv.append(cur)
    return [a.replace("%%", "%") for a in argv]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home with space"
    (h / ".local" / "bin").mkdir(parents=True)
    return h


def test_install_into_a_home_with_spaces(tmp_path: Path, home: Path) -> None:
    release = _release(tmp_path / "Symphony 0.1.0 ünï")
    out = _run(release, home)
    share = home / ".local" / "share"
    exe = share / "symphony-aide" / "Symphony" / "symphony"
    assert exe.is_file()
    assert (share / "symphony-aide" / "Symphony" / "_internal" / "marker.txt").read_text() == "v1"
    assert (share / "icons/hicolor/256x256/apps/symphony-aide.png").read_bytes() == (
        release / "symphony.png"
    ).read_bytes()
    assert (share / "icons/hicolor/scalable/apps/symphony-aide.svg").is_file()
    desktop = share / "applications" / "symphony.desktop"
    text = desktop.read_text("utf-8")
    assert "@EXEC@" not in text
    assert "Icon=symphony-aide" in text
    argv = _exec_argv(desktop)
    assert argv == [str(exe)]
    ran = subprocess.run([*argv, "--version"], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "fake symphony v1 --version"
    link = home / ".local" / "bin" / "symphony"
    assert link.is_symlink()
    assert os.readlink(link) == str(exe)
    assert f"installed in {exe.parent}" in out.stdout


def test_exec_line_escapes_reserved_characters(tmp_path: Path, home: Path) -> None:
    release = _release(tmp_path / "rel")
    prefix = tmp_path / 'data $HOME "q" `b` back\\slash 100%'
    _run(release, home, "--prefix", str(prefix))
    exe = prefix / "symphony-aide" / "Symphony" / "symphony"
    argv = _exec_argv(prefix / "applications" / "symphony.desktop")
    assert argv == [str(exe)]
    assert subprocess.run(argv, capture_output=True, text=True, check=True).stdout.startswith(
        "fake symphony v1"
    )


def test_xdg_data_home_is_honoured(tmp_path: Path, home: Path) -> None:
    release = _release(tmp_path / "rel")
    data = tmp_path / "xdg data"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_DATA_HOME": str(data)}
    subprocess.run(["bash", str(release / "install.sh")], env=env, check=True, timeout=60)
    assert (data / "symphony-aide" / "Symphony" / "symphony").is_file()
    assert (data / "applications" / "symphony.desktop").is_file()


def test_reinstall_replaces_the_old_version(tmp_path: Path, home: Path) -> None:
    _run(_release(tmp_path / "one", "v1"), home)
    old_only = home / ".local/share/symphony-aide/Symphony/_internal/old_only.txt"
    old_only.write_text("stale", encoding="utf-8")
    _run(_release(tmp_path / "two", "v2"), home)
    app = home / ".local/share/symphony-aide/Symphony"
    assert (app / "_internal" / "marker.txt").read_text() == "v2"
    assert not old_only.exists()
    assert sorted(p.name for p in app.parent.iterdir()) == [".symphony-install", "Symphony"]


def test_uninstall_removes_what_install_put(tmp_path: Path, home: Path) -> None:
    release = _release(tmp_path / "rel")
    share = home / ".local" / "share"
    (share / "applications").mkdir(parents=True)
    other = share / "applications" / "other.desktop"
    other.write_text("[Desktop Entry]\n", encoding="utf-8")
    user_data = share / "symphony" / "pit"
    user_data.mkdir(parents=True)
    _run(release, home)
    out = _run(release, home, "--uninstall")
    assert "removed" in out.stdout
    assert not (share / "symphony-aide").exists()
    assert not (share / "applications" / "symphony.desktop").exists()
    assert not (share / "icons/hicolor/256x256/apps/symphony-aide.png").exists()
    assert not (home / ".local" / "bin" / "symphony").exists()
    assert other.exists()
    assert user_data.is_dir()  # the user's data stays


def test_uninstall_leaves_a_foreign_link_alone(tmp_path: Path, home: Path) -> None:
    link = home / ".local" / "bin" / "symphony"
    link.symlink_to("/usr/bin/true")
    release = _release(tmp_path / "rel")
    _run(release, home)
    assert os.readlink(link) == "/usr/bin/true"
    _run(release, home, "--uninstall")
    assert os.readlink(link) == "/usr/bin/true"


def test_a_release_without_the_bundle_is_refused(tmp_path: Path, home: Path) -> None:
    release = _release(tmp_path / "rel")
    shutil.rmtree(release / "Symphony")
    out = _run(release, home, check=False)
    assert out.returncode != 0
    assert "no Symphony/symphony next to this script" in out.stderr
    assert not (home / ".local" / "share" / "symphony-aide").exists()


def test_a_missing_icon_is_named(tmp_path: Path, home: Path) -> None:
    release = _release(tmp_path / "rel")
    (release / "symphony.svg").unlink()
    out = _run(release, home, check=False)
    assert out.returncode != 0
    assert "symphony.svg is missing" in out.stderr


def test_a_foreign_target_folder_is_not_touched(tmp_path: Path, home: Path) -> None:
    target = home / ".local" / "share" / "symphony-aide"
    target.mkdir(parents=True)
    (target / "precious.txt").write_text("keep", encoding="utf-8")
    release = _release(tmp_path / "rel")
    out = _run(release, home, check=False)
    assert out.returncode != 0
    assert "was not made by install.sh" in out.stderr
    out = _run(release, home, "--uninstall", check=False)
    assert out.returncode != 0
    assert (target / "precious.txt").read_text() == "keep"


def test_unknown_options_are_named(tmp_path: Path, home: Path) -> None:
    out = _run(_release(tmp_path / "rel"), home, "--frobnicate", check=False)
    assert out.returncode != 0
    assert "unknown option: --frobnicate" in out.stderr
    out = _run(_release(tmp_path / "rel2"), home, "--prefix", check=False)
    assert "--prefix needs a folder" in out.stderr


def test_help_prints_the_usage(tmp_path: Path, home: Path) -> None:
    out = _run(_release(tmp_path / "rel"), home, "--help")
    assert "--uninstall" in out.stdout
    assert "./install.sh" in out.stdout
