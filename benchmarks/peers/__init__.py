"""Peers of ``peer_throughput.py``: each module sets up the shared data and runs one contender."""
