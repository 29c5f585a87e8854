"""Members: the people of the co-op, their accounts on each platform, invites, link codes and roles."""
