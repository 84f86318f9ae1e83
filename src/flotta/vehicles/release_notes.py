"""Simulated release notes per firmware branch (`release_notes`)."""

from __future__ import annotations

from typing import Any

_NOTES: dict[str, list[tuple[str, str, str, str]]] = {
    "2026.38": [
        (
            "Charge Stats",
            "Energy",
            "See your charging history by location and cost in Controls > Charging.",
            "release_notes_icon_charging",
        ),
        (
            "Dashcam Viewer Improvements",
            "Safety",
            "Clips are now grouped by event and can be filtered by camera.",
            "release_notes_icon_dashcam",
        ),
    ],
    "2026.44": [
        (
            "Cabin Overheat Protection",
            "Climate",
            "Set the cabin overheat protection temperature from the mobile app.",
            "release_notes_icon_climate",
        ),
        (
            "Supercharger Congestion",
            "Navigation",
            "The map now shows live stall availability at nearby Superchargers.",
            "release_notes_icon_navigation",
        ),
    ],
}
_GENERIC = (
    "Minor Fixes",
    "",
    "This release contains minor fixes and improvements.",
    "release_notes_icon_general",
)


def branch_of(version: str) -> str:
    """`2026.38.4 abcdef` → `2026.38`."""
    return ".".join(version.split(" ")[0].split(".")[:2])


def customer_version(version: str) -> str:
    """Tesla's customer-facing version: without the build hash."""
    return version.split(" ")[0]


def release_notes(version: str) -> list[dict[str, Any]]:
    """The notes of `version`; an empty version (no staged update) has none."""
    if not version.strip():
        return []
    entries = _NOTES.get(branch_of(version), [_GENERIC])
    shown = customer_version(version)
    return [
        {
            "title": title,
            "subtitle": subtitle,
            "description": description,
            "customer_version": shown,
            "icon": icon,
            "image_url": "",
            "light_image_url": "",
        }
        for title, subtitle, description, icon in entries
    ]
