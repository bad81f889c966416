"""A panel that runs its model on one image: Open…, drops and the sample shelf in, the latest request out."""
from __future__ import annotations

from gui.dropping import FileDrops, choose_image
from gui.latest import LatestRequest
from gui.samples import sample_photos
from gui.shown_first import ShownFirst


class ImageInput(ShownFirst, FileDrops):
    """Mixin (put it before the Qt base class). The panel sets `bridge`, `settings`, `panel_id` (the
    settings prefix), `samples_holder` (a SampleShelf whose `chosen` goes to `set_image`) and
    `error_label`, and defines `run_image()` (its request for `current_path`, sent with
    `submit_latest`) and `show_result(res)`. The first sample is run once the panel is shown."""

    current_path: str | None = None
    _latest: LatestRequest | None = None  # the request in flight, made on the first submit
    #: With no Fashion-MNIST samples, start on the first scikit-image photo instead of waiting for a choice.
    photo_fallback = False

    def run_image(self) -> None:
        raise NotImplementedError

    def show_result(self, res) -> None:
        raise NotImplementedError

    def show_error(self, err) -> None:
        self.error_label.setText(err.message)
        self.error_label.show()

    def submit_latest(self, request: str, params: dict, name: str) -> None:
        """Submit the panel's request; one still in flight is cancelled and its late answer dropped."""
        if self._latest is None:
            self._latest = LatestRequest(self.bridge)
        self._latest.submit(request, params, name=name, on_result=self.show_result, on_error=self.show_error)

    def set_image(self, path: str) -> None:
        """Show and run `path` (from Open, a drop or a sample)."""
        self.current_path = path
        self.run_image()

    def load_samples(self, request: str) -> None:
        """Ask the engine for the Fashion-MNIST samples; the shelf shows them with the photos."""
        self.bridge.submit(request, {}, name="Fashion-MNIST samples", on_result=self._samples_ready,
                           on_error=lambda _err: self._samples_ready([]))

    def _choose_file(self) -> None:
        path = choose_image(self, self.settings, f"{self.panel_id}/last_dir")
        if path:
            self.set_image(path)

    def _samples_ready(self, fmnist) -> None:
        self.samples = self.samples_holder.set_samples(list(fmnist or []))
        if self.current_path is not None:
            return
        first = fmnist[0][0] if fmnist else None
        if first is None and self.photo_fallback and sample_photos():
            first = sample_photos()[0][0]
        if first:
            self.when_shown(lambda: self._first_image(first))

    def _first_image(self, path: str) -> None:
        """The automatic first run, once the panel is shown; an image the user chose meanwhile wins."""
        if self.current_path is None:
            self.set_image(path)

    def file_drop(self, path: str) -> None:
        self.set_image(path)
