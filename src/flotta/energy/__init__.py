"""Energy sites: homes with solar, a battery and a wall connector behind the Fleet API."""
