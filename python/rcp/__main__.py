"""`python -m rcp`: the rcp command line."""

from rcp.cli import run

run()
