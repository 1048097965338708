"""The repository's own doit graph.

``doit`` (in this folder) builds the demo workspace ``fixtures/demo`` into the repository's
``build/``: the pack at ``build/demo.pack``, its manifest at ``build/demo.manifest.json``, the
per-asset artifacts under ``build/assets/`` and packer's state (lane lock, caches) under
``build/.packer-demo/``. Nothing is written under ``fixtures/``: the demo is built frozen, so its
committed registry.json must already be in sync with its asset folders (after changing them, run
``packer -C fixtures/demo sync`` and commit the registry), and any drift fails the build.

``doit workspace=PATH`` builds another workspace instead, as its own dodo.py would: packer's state
goes to ``PATH/.packer/`` and outputs to the out folder of its packer.toml (``PATH/build/``); it
is synced first unless ``PACKER_FROZEN=1``, like any workspace build. A relative PATH is taken
from this folder, where doit runs. Naming the demo itself (``workspace=fixtures/demo``) is the
default build.

doit's own database is ``build/.doit-repo.json`` for the demo, and the workspace's own
``PATH/.packer/doit.json`` for another workspace, so that ``doit workspace=PATH`` and ``doit`` in
PATH share one record and neither rebuilds what the other built. Only packer's tasks
(``asset:<asset_id>`` per asset, and ``pack``) run by default; ``doit list --all`` shows them.
"""

from __future__ import annotations

import os

from doit import get_var
from doit.exceptions import InvalidDodoFile

from packer.doit import doit_config, packer_tasks
from packer.doitdb import BACKEND
from packer.errors import PackerError

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = "fixtures/demo"
BUILD = "build"

_workspace = get_var("workspace", DEMO) or DEMO  # None outside a doit command line
_is_demo = os.path.realpath(os.path.join(HERE, _workspace)) == os.path.realpath(
    os.path.join(HERE, DEMO)
)

if _is_demo:
    assets = packer_tasks(
        DEMO,
        frozen=True,
        state_dir=os.path.join(BUILD, ".packer-demo"),
        out_dir=BUILD,
    )
    os.makedirs(BUILD, exist_ok=True)
    DOIT_CONFIG = {"dep_file": os.path.join(BUILD, ".doit-repo.json"), "backend": BACKEND}
else:
    assets = packer_tasks(_workspace)
    try:
        DOIT_CONFIG = doit_config(assets.ws)
    except PackerError as err:
        raise InvalidDodoFile(f"packer: {err}") from None
DOIT_CONFIG["default_tasks"] = ["pack"]


# --- Repository tasks -----------------------------------------------------------------------
# Tasks of the repository itself. They are not default tasks: plain ``doit`` builds the
# workspace only; run them by name. Their outputs and state stay under ``build/``.
# ``doit bench``: timings against plain doit, ninja and the floors (tests/bench/README.md).
# ``doit fuzz``: the state machine of tests/test_state_machine.py with a release budget.
# ``doit fuzz_pack``: mutated packs and manifests against the reader and verify, and kill -9 of
# real builds, with a release budget.
from tests.bench.tasks import task_bench  # noqa: E402
from tests.fuzz import task_fuzz, task_fuzz_pack  # noqa: E402

__all__ = ["DOIT_CONFIG", "assets", "task_bench", "task_fuzz", "task_fuzz_pack"]
