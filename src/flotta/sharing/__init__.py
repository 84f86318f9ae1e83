"""Vehicle sharing: invitations and the drivers they create."""
