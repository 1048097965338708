"""The plain-doit reference: copied as ``dodo.py`` into ``build/bench/ws-<N>-plain/``.

What a doit user would write without packer, on the same input files: one task per asset
(``asset:<asset_id>``) whose ``file_dep`` is the asset.json and its inputs and whose action
copies (concatenates) the inputs to ``out/<asset_id>.bin``, and one ``pack`` task whose
``file_dep`` is every artifact and whose action concatenates them in asset_id order. No
DOIT_CONFIG: doit's default checker (mtime, then md5) and default backend and dep file
(``.doit.db``, dbm) as doit ships them.

The graph comes from ``graph.json`` beside this file (the harness writes it from registry.json):
``{"assets": [[asset_id, asset_json_path, [input paths], [dep asset_ids]], ...]}``, paths
relative to this folder. Reading one JSON file stands in for a hand-written list of tasks.
"""

import json
import os
import shutil

with open("graph.json", encoding="utf-8") as _handle:
    GRAPH = json.load(_handle)

OUT = "out"


def concat(sources, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as out:
        for source in sources:
            with open(source, "rb") as handle:
                shutil.copyfileobj(handle, out)


def task_assets():
    for asset_id, decl, inputs, deps in GRAPH["assets"]:
        artifact = f"{OUT}/{asset_id}.bin"
        yield {
            "basename": f"asset:{asset_id}",
            "actions": [(concat, [inputs, artifact])],
            "file_dep": [decl, *inputs],
            "task_dep": [f"asset:{dep}" for dep in deps],
            "targets": [artifact],
            "clean": True,
        }


def task_pack():
    artifacts = [f"{OUT}/{asset_id}.bin" for asset_id, _, _, _ in sorted(GRAPH["assets"])]
    return {
        "actions": [(concat, [artifacts, f"{OUT}/all.pack"])],
        "file_dep": artifacts,
        "targets": [f"{OUT}/all.pack"],
        "clean": True,
    }
