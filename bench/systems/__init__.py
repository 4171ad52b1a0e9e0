"""One module per system under test. Each runs in a process of its own (``bench.worker``).

A system module defines ``available(store) -> str | None`` (why it cannot run there, or None),
``versions() -> dict``, and ``async def session(store, db_url)``: an async context
manager giving an object with ``async run(kind, n)`` for each workload kind
(``two``: a 2-step workflow; ``chain``: 10 sequential steps; ``fanout``: n parallel
steps joined), returning the workflow's checked output.
"""
