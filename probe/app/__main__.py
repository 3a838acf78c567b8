"""`python -m probe.app`: the same as the `probe` command."""
import sys

from probe.app.cli import main

sys.exit(main())
