"""The twistd plugin: `twistd -n pypid`. Import-cheap: pypid.tap loads only when used."""

from twisted.application.service import ServiceMaker

pypid = ServiceMaker(
    "pypid",
    "pypid.tap",
    "A self-hosted Python package registry speaking GitLab's PyPI API",
    "pypid",
)
