"""Flotta: an open, self-hostable Fleet API."""
