"""The ``pot`` command: a thin shell that wires the packages' commands together.

It holds no logic of its own; each room registers its subcommands:
``model_checker`` (check, models), ``spec`` (prove), ``pot_impl`` (keys,
node, cluster, submit, status) and ``conformance`` (conform, audit).
"""

from importlib import metadata

try:
    __version__ = metadata.version("pot-verify")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
