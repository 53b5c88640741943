"""The command a manifest records: the arguments that define the model, not where it was written."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence


def recipe_command(
    module: str, argv: Sequence[str], drop_options: Iterable[str] = (), drop_switches: Iterable[str] = ()
) -> str:
    """``python -m module`` with argv minus the given options (and their values) and switches.

    Where the registry or run folder lives, resuming and overwriting do not change the weights, so a
    manifest that names them would make a scratch run look like a different recipe.
    """
    options, switches = set(drop_options), set(drop_switches)
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif arg not in switches and arg.split("=", 1)[0] not in options:
            out.append(arg)
    return f"python -m {module} " + shlex.join(out)
