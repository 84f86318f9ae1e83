"""Small interfaces for swappable infrastructure; `flotta.adapters` holds their implementations."""
