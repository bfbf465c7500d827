"""Alembic migrations of the leaderboard's store (run by ``Database.migrate`` and ``dpbench serve``)."""
