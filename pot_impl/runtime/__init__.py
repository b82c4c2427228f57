"""The node runtime: runs the sans-IO replica over signed TCP with SQLite persistence.

Layers, bottom up: ``crypto`` (Ed25519 keys), ``config`` (TOML), ``framing``
(length-prefixed frames), ``events`` (JSONL protocol log), ``store`` (SQLite),
``limits`` and ``admission`` (what peers may cost a node), ``node`` (asyncio
host of the replica), ``client``, ``cluster`` (local multi-process launcher) and
``faults`` (link proxy for fault injection).
"""
