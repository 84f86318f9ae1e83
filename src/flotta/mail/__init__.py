"""Outgoing e-mail: a durable outbox, delivered over SMTP when configured."""
