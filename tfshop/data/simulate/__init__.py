"""The synthetic shop: seeded users, items, sessions and funnel events with known probabilities.

``shop`` simulates; ``words`` holds the category tree, attribute words, intents and query
templates that titles, descriptions and queries are made of.
"""

from tfshop.data.simulate.shop import START_TIMESTAMP, SimulateConfig, simulate

__all__ = ["START_TIMESTAMP", "SimulateConfig", "simulate"]
