"""Patchwork: the desktop app by default, headless subcommands for scripts.

    python main.py                      # open the GUI
    python main.py classify IMG --json  # headless; see `python main.py --help`
"""
from __future__ import annotations

import sys


def _gui_device(argv: list[str]) -> tuple[bool, str | None]:
    """(is this a plain GUI launch, its --device). The full parser imports every feature's
    command line (~0.7 s), which a GUI launch should not wait for before its first paint."""
    rest = list(argv)
    if rest[:1] == ["gui"]:
        rest = rest[1:]
    if not rest:
        return True, None
    if len(rest) == 1 and rest[0].startswith("--device="):
        return True, rest[0].split("=", 1)[1]
    if len(rest) == 2 and rest[0] == "--device":
        return True, rest[1]
    return False, None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    is_gui, device = _gui_device(argv)
    if is_gui:
        from gui.app import run_gui

        return run_gui(device=device)
    from engine.cli import build_parser, run

    args = build_parser(argv).parse_args(argv)
    if args.command in (None, "gui"):
        from gui.app import run_gui

        return run_gui(device=args.device)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
