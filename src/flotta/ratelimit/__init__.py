"""Rate limits per app, device and category (reference §7), answered with Tesla's 429."""
