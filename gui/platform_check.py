"""Before Qt starts: can its platform plugin load on this machine?

When the X11 (xcb) plugin cannot load, Qt aborts the process with a line that names only
`libxcb-cursor0`, even when other libraries are what is missing (on a fresh Debian 12:
libxcb-icccm4 and libxcb-keysyms1). Here `ldd` reads the plugin's real dependencies, and
the user gets the libraries that are missing and the command that installs them.
No Qt import: this runs before QApplication exists, and a Qt abort cannot be caught.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: Debian/Ubuntu and Fedora packages for the sonames Qt's xcb plugin needs, where the
#: Debian name does not follow from the soname (see `debian_package`).
DEBIAN = {"libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libOpenGL.so.0": "libopengl0",
          "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
          "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libICE.so.6": "libice6",
          "libSM.so.6": "libsm6", "libxcb-util.so.1": "libxcb-util1"}
FEDORA = {"libxcb-cursor.so.0": "xcb-util-cursor", "libxcb-icccm.so.4": "xcb-util-wm",
          "libxcb-keysyms.so.1": "xcb-util-keysyms", "libxcb-image.so.0": "xcb-util-image",
          "libxcb-render-util.so.0": "xcb-util-renderutil", "libxcb-util.so.1": "xcb-util",
          "libxkbcommon-x11.so.0": "libxkbcommon-x11", "libxkbcommon.so.0": "libxkbcommon",
          "libEGL.so.1": "libglvnd-egl", "libGL.so.1": "libglvnd-glx", "libOpenGL.so.0": "libglvnd-opengl",
          "libfontconfig.so.1": "fontconfig", "libfreetype.so.6": "freetype", "libdbus-1.so.3": "dbus-libs",
          "libglib-2.0.so.0": "glib2", "libgthread-2.0.so.0": "glib2", "libX11-xcb.so.1": "libX11-xcb",
          "libX11.so.6": "libX11", "libICE.so.6": "libICE", "libSM.so.6": "libSM"}

_SONAME = re.compile(r"^(lib[\w.+-]+?)\.so\.(\d+)")


def debian_package(soname: str) -> str:
    """libxcb-icccm.so.4 -> libxcb-icccm4; libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (Debian's rule:
    a hyphen before the version when the name ends in a digit)."""
    if soname in DEBIAN:
        return DEBIAN[soname]
    m = _SONAME.match(soname)
    if not m:
        return soname
    base, version = m.group(1).lower(), m.group(2)
    return f"{base}-{version}" if base[-1].isdigit() else f"{base}{version}"


def fedora_package(soname: str) -> str:
    if soname in FEDORA:
        return FEDORA[soname]
    m = _SONAME.match(soname)
    return m.group(1) if m else soname  # libxcb-randr.so.0 is in libxcb; close enough to search for


def xcb_plugin() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def missing_libraries(library: Path) -> list[str]:
    """The sonames `ldd` reports as "not found" for `library` (its whole dependency tree); [] when
    ldd is not there or cannot say."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = []
    for line in out.splitlines():
        name, sep, where = line.strip().partition("=>")
        if sep and "not found" in where and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def uses_xcb(env: dict) -> bool:
    """Will Qt pick the X11 plugin? Yes when asked for it, or by default on an X11 session."""
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return False
    return True


def problem(env: dict | None = None) -> str | None:
    """Why the desktop app cannot start on this machine (a short message with the fix), or None."""
    env = dict(os.environ if env is None else env)
    if not sys.platform.startswith("linux") or not uses_xcb(env):
        return None
    if not env.get("DISPLAY") and not env.get("QT_QPA_PLATFORM"):
        if env.get("WAYLAND_DISPLAY"):
            return None
        return ("error: no display to open the window on (DISPLAY is not set). Run Patchwork on a desktop "
                "session, or use the headless commands: python main.py --help")
    plugin = xcb_plugin()
    if plugin is None:
        return None
    marker = _checked_marker(plugin)
    if marker is not None and marker.exists():
        return None  # this plugin loaded here before: skip ldd (~30 ms) on every launch
    missing = missing_libraries(plugin)
    if missing:
        return install_message(missing)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass
    return None


def _checked_marker(plugin: Path) -> Path | None:
    """A cache file named for this plugin build, present once its libraries were all found."""
    from engine.paths import cache_dir

    try:
        st = plugin.stat()
    except OSError:
        return None
    return cache_dir() / "qt-platform-ok" / f"xcb-{st.st_size}-{st.st_mtime_ns}"


def install_message(missing: list[str]) -> str:
    debian = " ".join(dict.fromkeys(debian_package(s) for s in missing))
    fedora = " ".join(dict.fromkeys(fedora_package(s) for s in missing))
    return (f"error: Qt's X11 platform plugin cannot load: this machine lacks {', '.join(missing)}.\n"
            f"  Debian/Ubuntu: sudo apt install {debian}\n"
            f"  Fedora:        sudo dnf install {fedora}\n"
            "The headless commands work without them: python main.py --help")
