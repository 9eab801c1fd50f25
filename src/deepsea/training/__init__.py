"""Training one network: its settings, the loop, checkpoints, the model file, pseudo-label batches, snapshots."""
