"""The ``ledgerdesk`` command: serve, migrations, demo, and server-side administration."""
