"""``python -m ledgerdesk`` is the ``ledgerdesk`` command."""

from ledgerdesk.cli.main import main

main()
