"""Data rights: what the co-op holds about a member, their export, and the erasure when they leave."""
