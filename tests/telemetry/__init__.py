"""Tests for flotta.telemetry."""
