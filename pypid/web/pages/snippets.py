"""What a user copies to use a project's index: ~/.pypirc, pip, pip.conf, uv, poetry.

Never a real token: a placeholder the user replaces (GitLab's docs use the same names).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pypid.store.registry import Row

TOKEN = "<your_personal_token>"  # noqa: S105 - a placeholder, never a token


def _urls(base: str, project: Row) -> tuple[str, str, str]:
    api = f"{base}/api/v4/projects/{project['id']}/packages/pypi"
    parts = urlsplit(base)
    with_token = f"{parts.scheme}://__token__:{TOKEN}@{parts.netloc}{parts.path}" \
        f"/api/v4/projects/{project['id']}/packages/pypi/simple"
    return api, api + "/simple", with_token


def for_project(base: str, project: Row) -> dict[str, str]:
    api, simple, with_token = _urls(base, project)
    return {
        # twine reads [distutils] index-servers to find --repository gitlab.
        "pypirc": ("[distutils]\nindex-servers =\n    gitlab\n\n[gitlab]\n"
                   f"repository = {api}\nusername = __token__\npassword = {TOKEN}\n"),
        "pip": f"pip install --index-url {with_token} PACKAGE",
        "pipconf": f"[global]\nindex-url = {with_token}\n",
        "uv": ('[[tool.uv.index]]\nname = "gitlab"\n'
               f'url = "{simple}"\n\n'
               f"# and in the environment: UV_INDEX_GITLAB_USERNAME=__token__ "
               f"UV_INDEX_GITLAB_PASSWORD={TOKEN}"),
        "poetry": (f"poetry source add --priority=supplemental gitlab {simple}\n"
                   f"poetry config http-basic.gitlab __token__ {TOKEN}"),
    }


def install(base: str, project: Row, name: str) -> str:
    return f"pip install --index-url {_urls(base, project)[2]} {name}"
