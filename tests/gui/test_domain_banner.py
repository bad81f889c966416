"""The domain banner end to end: a colour photo given to a Fashion-MNIST model shows what the model
knows and offers the model that fits photos; a picture it knows hides the banner again."""
from __future__ import annotations

from PIL import Image, ImageDraw

from tests.gui.conftest import sample


def _garment(tmp_path) -> str:
    """A 28×28 light garment-like shape on black: inside the Fashion-MNIST statistics."""
    img = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(img).rectangle([8, 4, 20, 24], fill=200)
    path = tmp_path / "garment.png"
    img.save(path)
    return str(path)


def test_classify_banner_for_a_cat_photo_offers_vit_b16(window, qtbot):
    panel = window.panels["classify"]
    window.tabs.setCurrentWidget(panel)
    picker = panel.model_picker
    qtbot.waitUntil(lambda: picker.is_ready("fmnist-vit-tiny"), timeout=30_000)
    picker.combo.setCurrentIndex(picker.combo.findData("fmnist-vit-tiny"))
    panel.classify_path(sample("chelsea.png"))
    banner = panel.domain_banner
    qtbot.waitUntil(banner.isVisible, timeout=60_000)
    assert "knows only 28×28 grayscale clothing" in banner.title.text()
    assert "is in colour" in banner.detail.text()
    # offline the suggested models are not on disk yet: each is offered for download
    qtbot.waitUntil(lambda: banner.buttons["tv-vit-b-16"].text().startswith("Download"), timeout=30_000)
    assert "ViT-B/16" in banner.buttons["tv-vit-b-16"].text() and banner.buttons["tv-vit-b-16"].isEnabled()
    assert panel.layout().itemAt(0).widget() is banner  # at the top of the panel


def test_mae_banner_and_no_better_within_noise(window, qtbot, tmp_path):
    panel = window.panels["mae"]
    window.tabs.setCurrentWidget(panel)
    panel.set_image(sample("coffee.png"))
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.path.endswith("coffee.png"), timeout=60_000)
    assert panel.domain_banner.isVisible() and "MAE ViT-L/16" in panel.domain_banner.buttons["mae-vis-large"].text()
    assert "(better)" not in panel.metrics.text()
    assert panel.result.views.verdict in ("about the same", "worse") or "outside" in panel.result.views.verdict

    panel.set_image(_garment(tmp_path))  # a picture inside the training statistics: no banner
    qtbot.waitUntil(lambda: panel.result.path.endswith("garment.png"), timeout=60_000)
    assert not panel.domain_banner.isVisible()


def test_generate_banner_for_a_prompt_it_never_learned(window, qtbot):
    panel = window.panels["generate"]
    window.tabs.setCurrentWidget(panel)
    panel.settings.setValue("generate/neighbour_pool", 400)  # a small neighbour pool keeps the test quick
    qtbot.waitUntil(lambda: panel.generators.get("fmnist-unclip-tiny") is not None, timeout=30_000)
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("fmnist-unclip-tiny"))
    panel.prompt.setText("a red sports car on a beach at sunset")
    panel.steps.setValue(2)
    panel.count.setValue(1)
    panel.generate()
    qtbot.waitUntil(lambda: panel.job is None and panel.result is not None, timeout=120_000)
    banner = panel.domain_banner
    assert banner.isVisible() and "names none of the things it learned" in banner.detail.text()
    assert set(banner.buttons) == {"kandinsky-2-2-prior", "kandinsky-2-2-decoder"}
