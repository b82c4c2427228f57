"""The PoT ledger: a deterministic state machine over the PBFT-ordered log."""
