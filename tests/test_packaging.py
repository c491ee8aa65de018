"""What `pip install .` ships: every package of the source tree, and its data files."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_setup_cfg() -> None:
    """setup.cfg names its packages by hand (for twisted.plugins); a package missing there
    works in the editable test install and is absent from a real one."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = {line.strip() for line in config["options"]["packages"].splitlines()
              if line.strip()}
    found = {".".join(path.parent.relative_to(REPO).parts)
             for path in (REPO / "pypid").rglob("__init__.py")}
    assert found <= listed, f"not in setup.cfg's packages: {sorted(found - listed)}"
    data = config["options.package_data"]
    assert "schema/*.sql" in data["pypid.store"]
    assert "templates/*.html" in data["pypid.web.pages"]
