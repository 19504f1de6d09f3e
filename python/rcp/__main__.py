"""`python -m rcp`: the rcp command line."""

import sys

from rcp.cli import main

sys.exit(main())
