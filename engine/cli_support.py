"""What every command-line front end shares (engine/cli.py and each feature's cli.py): the
one exit-code table, one-line errors and warnings, output files written whole, one job run
on a fresh engine thread. Below the feature packages, so their cli.py files never import
engine/cli.py back (which imports them to build the parser)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

#: The one exit-code table of every command (README, "Headless command line"):
#: 0 ok; 1 bad input (a file, folder, model id, query or --out the command was given cannot be
#: used); 2 usage (the command line itself is wrong: unknown option, missing argument, a value
#: out of its range); 3 engine error (a device that is not there, a full disk, a bug);
#: 130 interrupted (Ctrl-C; training saves a checkpoint first).
EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_ENGINE, EXIT_STOPPED = 0, 1, 2, 3, 130
#: Domain errors that are about the machine, not about what the user asked for.
ENGINE_ERRORS = ("DeviceError", "DiskFullError")


def say_error(message: str) -> None:
    """One `error: ...` line on stderr, whatever the message holds (newlines, odd bytes)."""
    line = " ".join(str(message).split()) or "failed, and the reason was empty"
    try:
        raw = line.encode("utf-8", "surrogateescape")  # a file name's own bytes, shown as \xNN
    except UnicodeEncodeError:
        raw = line.encode("utf-8", "backslashreplace")
    print(f"error: {raw.decode('utf-8', 'backslashreplace')}", file=sys.stderr, flush=True)


def exit_code(info) -> int:
    """The table's code for a failed job's ErrorInfo."""
    if info.expected and info.type not in ENGINE_ERRORS:
        return EXIT_BAD_INPUT
    return EXIT_ENGINE


def out_file_problem(path: str) -> str | None:
    """Why an image can't be written to `path` (checked before any work is done), or None."""
    from PIL import Image

    p = Path(path)
    if p.is_dir():
        return f"--out {path}: is a folder; give a file name, e.g. {p / 'out.png'}"
    if p.suffix.lower() not in Image.registered_extensions():
        return f"--out {path}: not an image file name (use .png)"
    return parent_folder_problem(f"--out {path}", p)


def parent_folder_problem(label: str, p: Path) -> str | None:
    """Why the folder a new file `p` goes into is missing or not writable ("LABEL: ..."), or None."""
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        return f"{label}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{label}: cannot write into the folder {folder}"
    return None


def out_dir_problem(path: str) -> str | None:
    """Why `path` can't be (or become) a folder of outputs, or None."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        return f"--out {path}: is a file, not a folder"
    existing = p
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"--out {path}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {path}: cannot write into {existing}"
    return None


def save_image(pixels, path: str) -> str | None:
    """Write an RGB uint8 array to `path` completely or not at all; the error line, or None."""
    from PIL import Image

    p = Path(path)
    tmp = p.with_name(f".tmp-{os.getpid()}-{p.name}")
    try:
        Image.fromarray(pixels).save(tmp, format=Image.registered_extensions()[p.suffix.lower()])
        os.replace(tmp, p)
        return None
    except (OSError, ValueError, KeyError) as exc:
        tmp.unlink(missing_ok=True)
        return f"--out {path}: cannot write it ({getattr(exc, 'strerror', None) or exc})"


def run_one(device: str | None, job: str, params: dict):
    """Start the engine thread, run one job, shut the engine down: (result, EXIT_OK), or
    (None, the table's exit code) once the job's error is printed."""
    from engine.core import Engine
    from engine.errors import JobFailed

    engine = Engine(device=device).start()
    try:
        engine.wait_ready()
        return engine.submit(job, params, name=job).result(), EXIT_OK
    except JobFailed as exc:
        say_error(exc.info.message)
        return None, exit_code(exc.info)
    finally:
        engine.shutdown()


def warn_domain(result) -> None:
    """One `warning: ...` line on stderr when a result's input lies outside its model's domain."""
    warning = getattr(result, "domain_warning", None)
    if warning is not None:
        print("warning: " + " ".join(warning.message.split()), file=sys.stderr, flush=True)
