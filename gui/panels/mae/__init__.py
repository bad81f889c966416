"""The MAE panel: mask patches, watch a masked autoencoder paint them back, see the token shuffle."""
