"""The co-op's rules, free of any chat platform: one sub-package a room of the co-op
(members, dispatch, polls, money, announcements, data), and the few modules every room shares."""

from __future__ import annotations
