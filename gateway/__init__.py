"""The Flask side of the gateway: app factory, webhooks, CLI. Thin: validate, call the domain, answer."""

from gateway.app import create_app

__all__ = ["create_app"]
