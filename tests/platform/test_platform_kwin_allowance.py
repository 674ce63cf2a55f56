"""The KWin allowance as files: wavry's own entry, and the copies that shadow other entries
naming the same interpreter (KWin 5.27 reads only the first such entry it finds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wavry.platform.kwin import ALLOWED, competing_entries, install_allowance

INTERFACES = "X-KDE-Wayland-Interfaces=" + ",".join(ALLOWED)


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    home, system = tmp_path / "home", tmp_path / "system"
    exe = tmp_path / "bin" / "python3.11"
    exe.parent.mkdir()
    exe.write_text("")
    (system / "applications").mkdir(parents=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_DIRS", str(system))
    return home / "applications", system / "applications", exe


def _entry(exe: str, extra: str = "") -> str:
    return (
        "[Desktop Entry]\nName=Python (v3.11)\n"
        f"Exec={exe}\nTerminal=true\nType=Application\n{extra}"
        "\n[Desktop Action new]\nName=New\nExec=/bin/true\n"
    )


def test_a_system_entry_naming_the_interpreter_is_shadowed_with_the_interfaces(
    dirs: tuple[Path, Path, Path],
) -> None:
    home, system, exe = dirs
    (system / "python3.11.desktop").write_text(_entry(str(exe)))
    (system / "other.desktop").write_text(_entry("/usr/bin/other"))
    link = exe.parent / "python3"  # Exec through a symlink names the same program
    link.symlink_to(exe)
    (system / "vendor").mkdir()
    (system / "vendor" / "py.desktop").write_text(_entry(f"'{link}' -i"))

    path, written = install_allowance(str(exe))
    assert path == home / "wavry-kwin.desktop"
    assert sorted(written) == sorted(
        [path, home / "python3.11.desktop", home / "vendor" / "py.desktop"]
    )
    assert f"Exec={exe}\n" in path.read_text() and INTERFACES in path.read_text()
    copy = (home / "python3.11.desktop").read_text()
    assert copy.startswith("# wavry: ")
    # the interfaces go into [Desktop Entry], not into the action group after it
    entry, action = copy.split("[Desktop Action new]")
    assert INTERFACES in entry and INTERFACES not in action and "Name=Python (v3.11)" in entry
    assert INTERFACES in (home / "vendor" / "py.desktop").read_text()
    assert not (home / "other.desktop").exists()
    # the system's files are untouched
    assert INTERFACES not in (system / "python3.11.desktop").read_text()

    # once shadowed, the copies are the entries in effect and already allow: nothing changes
    assert install_allowance(str(exe)) == (path, [])
    assert sorted(src for src, _ in competing_entries(str(exe))) == sorted(
        [home / "python3.11.desktop", home / "vendor" / "py.desktop"]
    )


def test_a_users_own_entry_keeps_its_interfaces_and_gains_ours(
    dirs: tuple[Path, Path, Path],
) -> None:
    home, _system, exe = dirs
    home.mkdir(parents=True)
    own = home / "mine.desktop"
    own.write_text(_entry(str(exe), "X-KDE-Wayland-Interfaces=org_kde_plasma_window_management\n"))
    install_allowance(str(exe))
    text = own.read_text()
    assert not text.startswith("# wavry")  # the user's own file, edited in place
    assert "X-KDE-Wayland-Interfaces=org_kde_plasma_window_management," + ",".join(ALLOWED) in text
    assert text.count("X-KDE-Wayland-Interfaces=") == 1


def test_nothing_else_names_the_interpreter(dirs: tuple[Path, Path, Path]) -> None:
    home, system, exe = dirs
    (system / "broken.desktop").write_text("[Desktop Entry]\nExec='unterminated\n")
    (system / "relative.desktop").write_text(_entry("python3.11"))
    (system / "unreadable.desktop").mkdir()  # a directory named like an entry
    path, written = install_allowance(str(exe))
    assert written == [path] and sorted(os.listdir(home)) == ["wavry-kwin.desktop"]
    assert install_allowance(str(exe)) == (path, [])
