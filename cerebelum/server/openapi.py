"""``python -m cerebelum.server.openapi`` prints the HTTP API's OpenAPI document."""

import sys

from ._openapi import openapi_document, openapi_text

__all__ = ["openapi_document", "openapi_text"]

if __name__ == "__main__":
    sys.stdout.write(openapi_text())
