"""Leaderboard: takes submissions and shows the board (a plug-in of the ``dpbench`` CLI)."""
