"""Display names of the option codes the simulated models carry (`/dx/vehicles/options`)."""

from __future__ import annotations

from typing import Any

# Paint codes also carry a colour code, as Tesla's response does.
PAINT = frozenset({"PPSW", "PPMR", "PPSS", "PMNG", "PBSB"})

OPTION_NAMES: dict[str, str] = {
    "APF2": "Full Self-Driving Capability",
    "APH4": "Autopilot Computer 4.0",
    "AU3P": "Premium Audio",
    "BC3B": "Black Brake Calipers",
    "BC3R": "Red Brake Calipers",
    "CH15": "Onboard Charger 48A",
    "COUS": "Country: United States",
    "CT01": "Cybertruck",
    "DRLH": "Left-Hand Drive",
    "FC3P": "Front Console with Wireless Charging",
    "GLFR": "Final Assembly Fremont",
    "HL32": "Matrix LED Headlights",
    "MT353": "Model 3 Long Range All-Wheel Drive",
    "MTS14": "Model S Plaid",
    "MTY13": "Model Y Long Range All-Wheel Drive",
    "PPMR": "Ultra Red Multi-Coat Paint",
    "PPSS": "Stainless Steel Exterior",
    "PPSW": "Pearl White Multi-Coat Paint",
    "PRCT1": "Black Interior",
    "PRM31": "Premium Black Interior",
    "PRMS1": "Black Interior",
    "PRMY1": "Premium Black Interior",
    "SC05": "Supercharger Access: Pay Per Use",
    "STY7S": "Seven-Seat Interior",
}


def option_list(option_codes: str) -> list[dict[str, Any]]:
    """Tesla's `codes` list: `$`-prefixed codes with names; unknown codes keep the code."""
    codes = [c.strip() for c in option_codes.split(",") if c.strip()]
    out: list[dict[str, Any]] = []
    for code in codes:
        item: dict[str, Any] = {
            "code": f"${code}",
            "displayName": OPTION_NAMES.get(code, code),
            "isActive": True,
        }
        if code in PAINT:
            item["colorCode"] = code
        out.append(item)
    return out
