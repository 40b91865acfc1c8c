"""SMS providers, one module each, behind the interface of `base`: Africa's Talking and Kannel routes."""
