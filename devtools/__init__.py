"""Tools for development and demos, never run in production: the provider emulator, `flask --app wsgi dev`, the
terminal USSD phone and the demo seeder. Domain packages never import from here."""
