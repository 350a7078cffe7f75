"""The foundation package of AskAgency: settings, database session, clock, staff accounts and
the other services every feature package shares. It imports no feature package (``make lint``
checks the package layers; docs/readme/development.md)."""
