"""numpy arrays from the engine -> Qt images (copies, so the array can be freed)."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def array_to_qimage(arr: np.ndarray) -> QImage:
    """(H, W, 3) or (H, W) uint8 -> QImage that owns its pixels."""
    a = np.ascontiguousarray(arr)
    if a.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {a.dtype}")
    if a.ndim == 2:
        h, w = a.shape
        return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8).copy()
    h, w, c = a.shape
    fmt = {3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}[c]
    return QImage(a.data, w, h, a.strides[0], fmt).copy()


def array_to_pixmap(arr: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(array_to_qimage(arr))
