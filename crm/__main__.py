"""`python -m crm`: the command-line interface."""

from crm.cli import main

main()
