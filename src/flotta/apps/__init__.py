"""Developer applications: apply, review, credentials, public keys and partner registration."""
