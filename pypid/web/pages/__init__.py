"""The web pages: views (the handlers), render (Jinja2 templates), snippets."""
