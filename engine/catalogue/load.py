"""Build a catalogue model on the engine's device, through the model cache.

The only way panels get a model: resolves the weights on disk, verifies the checksum
where one is known (once per file per session), and calls the entry's builder.
"""
from __future__ import annotations

import time

from engine.catalogue import get
from engine.catalogue.locate import NEEDS_DOWNLOAD, local_path, state_of
from engine.models.registry import resolve
from engine.errors import ModelError
from engine.integrity import verify_sha256

_verified: set[tuple[str, str]] = set()


def build_model(entry, path=None):
    """Build `entry` on the CPU in eval mode (no cache, no device move)."""
    try:  # a card naming an unregistered builder is refused before its files are touched
        builder = resolve(entry.builder)
    except ModelError as exc:
        raise ModelError(f"{entry.name}: {exc}") from None
    except ImportError as exc:
        raise ModelError(f"{entry.name} needs a package that is not installed: {exc.name}") from None
    path = path or local_path(entry)
    if path is None:
        st = state_of(entry)
        hint = " Download it from Models → Manage models." if st.state == NEEDS_DOWNLOAD else ""
        raise ModelError(f"{entry.name} is not available: {st.state}{' (' + st.detail + ')' if st.detail else ''}.{hint}")
    if entry.sha256 and path.is_file() and (str(path), entry.sha256) not in _verified:
        verify_sha256(str(path), entry.sha256)
        _verified.add((str(path), entry.sha256))
    return builder(entry, path).eval()


def load_model(ctx, model_id: str):
    """The catalogue model on the engine's device, from the model cache."""
    entry = get(model_id)
    return ctx.models.get(f"{model_id}@{ctx.device}", lambda: build_model(entry).to(ctx.device))


def timed_load(ctx, model_id: str):
    """(load_model(ctx, model_id), the seconds it took): results report load time apart."""
    t0 = time.perf_counter()
    model = load_model(ctx, model_id)
    return model, time.perf_counter() - t0


def entry_of_family(model_id: str, family: str, what: str):
    """The catalogue entry, or a ModelError when it is not of `family` (`what` it should be)."""
    entry = get(model_id)
    if entry.family != family:
        raise ModelError(f"{entry.name} ({model_id}) is not {what} (family {entry.family!r})")
    return entry
