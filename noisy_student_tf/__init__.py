"""Noisy Student Training (Xie et al., CVPR 2020) for TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
