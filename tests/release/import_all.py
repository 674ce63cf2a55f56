"""Import every module of the installed `wavry` package (run with the environment's python).

Prints one JSON object: {"imported": N, "failed": {module: "ExcType: message (missing: name)"}}.
`__main__` modules are skipped (importing them runs the command), and so is the migrations'
`env` script (alembic runs it inside its own context).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import warnings

import wavry

warnings.simplefilter("ignore")
failed: dict[str, str] = {}
imported = 0
for info in pkgutil.walk_packages(wavry.__path__, "wavry."):
    if info.name.endswith(".__main__") or info.name == "wavry.gateway.migrations.env":
        continue
    try:
        importlib.import_module(info.name)
    except Exception as exc:  # every failure is reported, none stops the walk
        missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
        failed[info.name] = f"{type(exc).__name__}: {exc}"
        if missing:
            failed[info.name] += f" (missing: {missing})"
    else:
        imported += 1
json.dump({"imported": imported, "failed": failed, "file": wavry.__file__}, sys.stdout)
