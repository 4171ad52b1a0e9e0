"""``python -m bench.recover start|resume SYSTEM FLAVOUR URL N DIR`` (see the package)."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys


def main() -> None:
    mode, system, flavour, url, count, folder = sys.argv[1:7]
    module = importlib.import_module(f"bench.recover.{system}")
    if mode == "start":
        asyncio.run(module.start(flavour, url, int(count), folder))
    else:
        found = asyncio.run(module.resume(flavour, url, int(count), folder))
        print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
