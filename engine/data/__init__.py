"""Datasets for training: Fashion-MNIST, folders of images, captions, and a seeded loader.

Everything here returns numpy arrays or plain lists; torch is imported only by
engine.data.loader, so the GUI can list datasets without loading torch.
"""
