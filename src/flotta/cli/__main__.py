"""`python -m flotta.cli` runs the `flotta` command."""

from flotta.cli.main import main

main()
