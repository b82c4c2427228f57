"""The mutation catalogue: planted bugs in ``pot_impl`` and the campaign that checks the suite kills them.

``run_catalogue(names=None, ...) -> (list[MutantResult], Calibration)`` is what ``pot conform
--mutants`` calls; ``python -m conformance.mutants [NAME...] [--json]`` runs it from the shell.
"""

from __future__ import annotations

from conformance.mutants.campaign import MutantResult, default_modes, run_catalogue
from conformance.mutants.catalogue import CATALOGUE, Edit, Mutant, MutantError, by_name

__all__ = [
    "CATALOGUE",
    "Edit",
    "Mutant",
    "MutantError",
    "MutantResult",
    "by_name",
    "default_modes",
    "run_catalogue",
]
