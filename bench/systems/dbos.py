"""DBOS (the ``dbos`` package): workflows and steps, on SQLite or PostgreSQL."""
