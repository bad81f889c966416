"""Patchwork: the desktop app by default, headless subcommands for scripts.

    python main.py                      # open the GUI
    python main.py classify IMG --json  # headless; see `python main.py --help`
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from engine.cli import build_parser, run

    args = build_parser().parse_args(argv)
    if args.command in (None, "gui"):
        from gui.app import run_gui

        return run_gui(device=args.device)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
