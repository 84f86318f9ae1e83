"""OAuth 2.0 server: apps as clients, refresh-token families and the token endpoint."""
