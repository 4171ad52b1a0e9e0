"""The HTML of the UI's pages: shells with a header, an empty main, and the page's script.

No execution data is ever written into this HTML (the scripts fetch it and put it in
with ``textContent``); the one value that is, the id of a missing execution on the 404
page, is escaped.
"""

from __future__ import annotations

import html

__all__ = ["PAGES", "page"]

#: The pages served at a fixed path, by name (the execution page is /executions/{id}).
PAGES = {"executions": "/", "approvals": "/approvals", "workers": "/workers"}

_TITLES = {
    "executions": "Executions",
    "execution": "Execution",
    "approvals": "Approvals",
    "workers": "Workers and queues",
    "missing": "Not found",
}

_NAV = (("executions", "/", "Executions"), ("approvals", "/approvals", "Approvals"),
        ("workers", "/workers", "Workers"))  # fmt: skip


def page(name: str, *, token_needed: bool, missing: str | None = None) -> str:
    """The page ``name``; ``missing`` is the id an execution page did not find."""
    current = "executions" if name in ("execution", "missing") else name
    nav = "".join(
        f'<a href="{href}"{" aria-current=page" if key == current else ""}>{label}</a>'
        for key, href, label in _NAV
    )
    if missing is not None:
        main = (f"<h1>Not found</h1><p class=empty>No execution has the id "
                f"<code>{html.escape(missing)}</code>.</p><p><a href=/>All executions</a></p>")  # fmt: skip
        script = ""
    else:
        main = ""
        script = f'<script type=module src="/ui/static/{name}.js"></script>'
    return f"""<!doctype html>
<html lang=en>
<head>
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>{_TITLES[name]} · Cerebelum</title>
<link rel=stylesheet href="/ui/static/ui.css">
<link rel=icon href="data:,">
</head>
<body data-page="{name}" data-token-needed="{"yes" if token_needed else "no"}">
<header><a class=brand href=/>Cerebelum</a><nav>{nav}</nav><span id=live></span></header>
<main id=main>{main}</main>
<dialog id=confirm><form method=dialog>
  <h2 id=confirm-title></h2><div id=confirm-body></div>
  <p class=error id=confirm-error></p>
  <menu><button value=cancel formnovalidate>Cancel</button><button id=confirm-ok value=ok class=primary>Confirm</button></menu>
</form></dialog>
<dialog id=login><form method=dialog>
  <h2>Token</h2>
  <p>This server wants its bearer token (<code>CEREBELUM_TOKEN</code>). It is kept in this tab only.</p>
  <input id=login-token type=password autocomplete=off required aria-label=token>
  <p class=error id=login-error></p>
  <menu><button value=ok class=primary>Use it</button></menu>
</form></dialog>
{script}
</body>
</html>
"""
