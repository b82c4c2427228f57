"""Proof of training: deterministic trainer, Merkle-committed segments, sampled re-execution.

An order fixes everything a trainer could abuse (architecture, data by content
hash, hyperparameters, seeds); the trainer commits one Merkle leaf per segment
of k steps; validators re-execute segments sampled from their own signature;
a mismatch becomes a fraud proof any coordinator checks by re-executing one
segment (see docs/training.md).
"""
