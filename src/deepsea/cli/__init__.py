"""The `deepsea` command line: `main.py` assembles one module of subcommands per stage family."""
