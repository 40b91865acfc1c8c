"""The SMS side uses the emulator and `wsgi_server` fixtures of tests/conftest.py."""
