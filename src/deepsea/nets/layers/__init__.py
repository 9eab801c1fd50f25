"""Layers of the Deep Sea architecture family that plain PyTorch does not provide."""
