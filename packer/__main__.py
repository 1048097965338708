"""``packer`` and ``python -m packer``. A plain ``packer build`` that the stat record answers
(``packer.statrecord``: nothing can have changed since the last one) returns before the CLI,
pydantic or doit is imported; everything else goes to ``packer.cli``."""

from __future__ import annotations

import sys
from typing import NoReturn


def main() -> NoReturn:
    if sys.argv[1:] == ["build"]:
        from packer.statrecord import answer_unchanged_build

        if answer_unchanged_build(sys.stdout):
            raise SystemExit(0)
    from packer.cli import entrypoint

    entrypoint()


if __name__ == "__main__":
    main()
