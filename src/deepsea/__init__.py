"""deepsea."""
