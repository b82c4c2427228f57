"""A seeded, deterministic simulator for PBFT clusters: network, clock, crashes and Byzantine replicas.

Every run is a pure function of its ``Scenario`` (which a seed generates), so
any failing run is reproduced by re-running its seed.
"""
