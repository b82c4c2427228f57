"""The PBFT replica (Castro and Liskov, OSDI'99) as a sans-IO deterministic state machine."""
