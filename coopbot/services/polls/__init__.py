"""Polls: one member, one vote; proposals, secret ballots, and the governed settings a vote changes."""
