"""Generate: text -> prior -> image embedding -> decoder, with a live preview, variations,
interpolation and a gallery."""
