"""Network architectures; `registry.build_model` is the one entry point."""
