"""Shared foundations of AskAgency: configuration and database session."""
