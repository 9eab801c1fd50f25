"""Using a trained ensemble on new images: the model bundle the workflow writes, and `deepsea classify`."""
