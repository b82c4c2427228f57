"""Conformance tests: the spec drives tests of the real node."""
