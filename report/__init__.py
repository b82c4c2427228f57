"""One self-contained HTML page for people, rendered from the suite's JSON documents.

``pot check``, ``pot conform`` and ``pot audit`` print JSON for machines; this package turns
those documents (and the benchmark results) into a page a person would rather look at. It
reads JSON only and imports nothing but the standard library, so it depends on the
documents' shape, never on the code that produced them.
"""
