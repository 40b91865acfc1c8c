"""The console's static files (gateway/static/) under URLs that name their content, so browsers keep them a year.

District offices work over slow, paid mobile data: the stylesheet is fetched once, not with every page. Its URL
carries a digest of the file (`/static/console.css?v=3f2a…`), so a new release changes the URL and no browser
keeps an old copy. Digests are taken when the application starts, from the files it will serve.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask, Request, Response, current_app, url_for

ASSETS_EXTENSION = "gateway_assets"
VERSION_ARG = "v"
# Hex digits of the content digest in an asset's URL: plenty to tell releases apart.
DIGEST_LENGTH = 12
# A versioned asset never changes under its URL: any cache may keep it for a year.
LONG_CACHE = "public, max-age=31536000, immutable"
STATIC_ENDPOINT = "static"


def init_app(app: Flask) -> None:
    """Digest every static file, and offer `asset_url(filename)` to templates."""
    folder = Path(app.static_folder or "")
    app.extensions[ASSETS_EXTENSION] = {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_LENGTH]
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    app.jinja_env.globals["asset_url"] = asset_url


def asset_url(filename: str) -> str:
    """The URL of a static file with its content's digest, e.g. `/static/console.css?v=3f2a9c0d1e2b`."""
    digest = current_app.extensions[ASSETS_EXTENSION][filename]
    return url_for(STATIC_ENDPOINT, filename=filename, **{VERSION_ARG: digest})


def is_versioned_asset(request: Request, response: Response) -> bool:
    """True for a static file served under its versioned URL: the one answer that may be cached."""
    return request.endpoint == STATIC_ENDPOINT and VERSION_ARG in request.args and response.status_code == 200
