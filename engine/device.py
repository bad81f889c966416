"""Device choice: CUDA > MPS > CPU unless the user overrides it."""
from __future__ import annotations

from engine.errors import DeviceError

CHOICES = ("auto", "cpu", "cuda", "mps")


def select_device(request: str | None = None) -> str:
    """Return a torch device string for `request` ("auto", "cpu", "cuda", "cuda:1", "mps")."""
    import torch

    req = (request or "auto").strip().lower()
    if req == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if req == "cpu":
        return "cpu"
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {req!r} was requested but no usable CUDA GPU was found "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}). "
                "Use --device cpu or 'auto'.")
        index = int(req.split(":", 1)[1]) if ":" in req else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {req!r} does not exist: {torch.cuda.device_count()} CUDA device(s) found")
        return req
    if req == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("device 'mps' was requested but Apple Metal is not available on this machine")
        return "mps"
    raise DeviceError(f"unknown device {request!r}; choose one of {', '.join(CHOICES)} (or cuda:N)")


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return "Apple Metal (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
