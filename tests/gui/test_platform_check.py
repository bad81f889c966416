"""Before Qt starts: the xcb plugin's missing libraries are read off with ldd and named, with the
packages that provide them, instead of Qt's abort that names the wrong one."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from gui import platform_check


@pytest.mark.parametrize("soname,debian,fedora", [
    ("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    ("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    ("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    ("libdbus-1.so.3", "libdbus-1-3", "dbus-libs"),
    ("libEGL.so.1", "libegl1", "libglvnd-egl"),
    ("libglib-2.0.so.0", "libglib2.0-0", "glib2"),
])
def test_packages_for_sonames(soname, debian, fedora):
    assert platform_check.debian_package(soname) == debian
    assert platform_check.fedora_package(soname) == fedora


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("ldd") is None, reason="needs gcc and ldd")
def test_ldd_names_a_library_that_is_really_missing(tmp_path):
    """A real shared object linked against a library that is then removed, as a plugin on a
    machine without libxcb-icccm is."""
    (tmp_path / "dep.c").write_text("int dep(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int dep(void); int plugin(void) { return dep(); }\n")
    lib = tmp_path / "libpwmissingdep.so.4"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libpwmissingdep.so.4", "-o", str(lib),
                    str(tmp_path / "dep.c")], check=True)
    plugin = tmp_path / "libqfake.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "plugin.c"), str(lib)], check=True)
    lib.unlink()
    missing = platform_check.missing_libraries(plugin)
    assert missing == ["libpwmissingdep.so.4"]
    message = platform_check.install_message(missing)
    assert "libpwmissingdep.so.4" in message and "sudo apt install libpwmissingdep4" in message
    assert "sudo dnf install" in message


def test_offscreen_and_wayland_need_no_xcb():
    assert platform_check.problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert not platform_check.uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"})
    assert platform_check.uses_xcb({"QT_QPA_PLATFORM": "xcb"})


def test_no_display_is_said_plainly():
    message = platform_check.problem({"PATH": "/usr/bin"})
    assert message is not None and "DISPLAY" in message and "main.py --help" in message
