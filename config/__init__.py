"""Settings from the environment: one commented line per setting, parsed by small helpers.

The domain packages (`menus`, `notifications`, `models`) take a `Settings` object, never Flask's config, so that
workers and the CLI can run them without an application context.
"""

from config.settings import DEVELOPMENT, PRODUCTION, TEST, Settings, SettingsError, load_settings

__all__ = ["DEVELOPMENT", "PRODUCTION", "TEST", "Settings", "SettingsError", "load_settings"]
