"""The web portal: developer onboarding, the owner console, admin review and the demo outbox."""
