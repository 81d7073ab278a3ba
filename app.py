"""The chat page and the HTTP API: ask questions of your Chinese documents, get cited answers.

Run with `make run` (builds what is missing first) or `python app.py`; it serves
http://127.0.0.1:7860, the page at / and the JSON API at /api/ (see web/api.py). Settings come
from the environment (retriever.config's WebSettings); with RETRIEVER_ACCESS_FILE the page
asks for a login and the API for a token (web/access.py, docs/SECURITY.md). The app itself is
built by web/server.py's `create_app`.
"""

from __future__ import annotations

import logging

import uvicorn

from retriever import IndexLoadError
from retriever.config import SettingsError, WebSettings
from web.access import AccessError
from web.builds import Opener
from web.server import create_app


def main(opener: Opener | None = None) -> None:
    """Serve until stopped; `opener` as create_app takes it."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for name in ("retriever", "web"):  # our own progress lines, without the libraries' chatter
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        settings = WebSettings.from_env()
        app = create_app(settings, opener=opener)
    except (SettingsError, AccessError) as error:
        raise SystemExit(f"not starting: {error}") from None
    except IndexLoadError as error:  # its message says how to build the index
        raise SystemExit(str(error)) from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        # Without trusted proxies the peer address is the client: an X-Forwarded-For header
        # from anyone else would let a client pick its own address, and dodge the limits.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


if __name__ == "__main__":
    main()
