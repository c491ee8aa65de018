"""pypid: a self-hosted Python package registry speaking GitLab's PyPI API."""

__version__ = "0.1.0"
