"""Predicting with a trained network: the test-time augmentation views and the streamed, batched prediction."""
