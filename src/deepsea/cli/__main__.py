"""`python -m deepsea.cli ...` runs the `deepsea` command."""

import sys

from deepsea.cli import main

sys.exit(main())
