"""Announcements: one text from a coordinator to every member, on every platform, once."""
