"""The images and what is derived from them alone: reading, packing, splits, duplicates, orientation, the demo set,
handcrafted features, affine views and training batches."""
