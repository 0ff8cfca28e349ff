"""The web page at ``/``: plain HTML, CSS and JavaScript, no build step (see docs/web.md)."""

from gateway.web.routes import web_router

__all__ = ["web_router"]
