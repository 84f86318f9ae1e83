"""Fleet Telemetry: vehicle streaming configuration, validation and delivery (fleet-api.md §9)."""
