"""The ``pot`` command: a thin shell that wires the packages' commands together.

It holds no logic of its own; each room registers its subcommands:
``model_checker`` (check, models), ``spec`` (prove), ``pot_impl`` (keys,
node, cluster, submit, status) and ``conformance`` (conform, audit).
"""
