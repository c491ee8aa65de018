"""The web pages without a browser: sign-in refusals, sessions that end, redirects, the
packages switch, bad query strings, escaping, and the cache of a project's page."""

from __future__ import annotations

import re
from pathlib import Path

from tests.web.conftest import World
from tests.web.helpers import Client, Reply

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def fresh(client: Client) -> Client:
    """A client with no cookies (the test client keeps them, as a browser does): these
    tests send their own."""
    return Client(client.harness)


def form_csrf(client: Client) -> tuple[str, str]:
    reply = fresh(client).get("/users/sign_in")
    assert reply.code == 200
    match = re.search(rb'name="csrf_token" value="([^"]+)"', reply.body)
    assert match is not None
    return match.group(1).decode(), reply.headers["set-cookie"][0].split(";")[0]


def sign_in(client: Client, token: str) -> Reply:
    csrf, cookie = form_csrf(client)
    return fresh(client).request("POST", "/users/sign_in", headers={**FORM, "Cookie": cookie},
                          data=f"csrf_token={csrf}&token={token}".encode())


def session_of(reply: Reply, client: Client) -> str:
    assert reply.code == 303, reply
    cookie = reply.headers["set-cookie"][0]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    return cookie.split(";")[0]


def test_sign_in_refusals(world: World) -> None:
    """A wrong token is a 401 with the form again; a deploy token signs nobody in; the
    form's CSRF cookie must match (login CSRF)."""
    client = world.client
    reply = sign_in(client, "glpat-wrong")
    assert reply.code == 401 and b"not a valid personal access token" in reply.body
    username, secret = world.tokens["deploy-read"]
    assert sign_in(client, secret).code == 401
    csrf, _ = form_csrf(client)
    reply = fresh(client).request("POST", "/users/sign_in", headers=FORM,
                           data=f"csrf_token={csrf}&token={world.tokens['mia'][1]}".encode())
    assert reply.code == 403 and "set-cookie" not in reply.headers
    assert username


def test_sessions_end_with_their_user_and_on_sign_out(world: World) -> None:
    client = world.client
    registry = client.harness.registry
    cookie = session_of(sign_in(client, world.tokens["rita"][1]), client)
    page = f"/{world.private_id}/-/packages"
    assert client.get(page, headers={"Cookie": cookie}).code == 200
    registry.set_user_state(registry.user("rita")["id"], "blocked")
    client.harness.app.caches.clear()  # as the daemon's watcher does after a CLI change
    reply = client.get(page, headers={"Cookie": cookie})
    assert (reply.code, reply.header("location")) == (303, "/users/sign_in")
    registry.set_user_state(registry.user("rita")["id"], "active")
    client.harness.app.caches.clear()
    home = client.get("/", headers={"Cookie": cookie})
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', home.body)
    assert csrf is not None
    reply = client.request("POST", "/users/sign_out", headers={**FORM, "Cookie": cookie},
                           data=b"csrf_token=" + csrf.group(1))
    assert reply.code == 303 and "Max-Age=0" in reply.headers["set-cookie"][0]
    assert client.get(page, headers={"Cookie": cookie}).code == 303


def test_anonymous_visitors_see_public_projects_only(world: World) -> None:
    client = world.client
    home = client.get("/")
    assert b"acme/public" in home.body and b"acme/private" not in home.body
    assert b"acme/internal" not in home.body
    assert client.get("/acme/public/-/packages").code == 200
    for hidden in ("/acme/private/-/packages", "/no/such/-/packages", "/acme/internal/-/packages"):
        reply = client.get(hidden)
        assert (reply.code, reply.header("location")) == (303, "/users/sign_in"), hidden
    # A signed-in outsider gets the 404 of a missing project for a private one.
    cookie = session_of(sign_in(client, world.tokens["outsider"][1]), client)
    assert client.get("/acme/private/-/packages", headers={"Cookie": cookie}).code == 404


def test_pages_escape_and_cache(world: World) -> None:
    """A name that needs no escaping still goes through the escaper; bad queries are 400s;
    an upload shows at once on a cached page."""
    client = world.client
    assert client.get("/acme/public/-/packages?page=x").code == 400
    assert client.get("/acme/public/-/packages?search=%00").code == 400
    reply = client.get("/acme/public/-/packages?search=%3Cscript%3E")
    assert reply.code == 200 and b"<script>" not in reply.body and b"&lt;script&gt;" in reply.body
    assert reply.header("content-security-policy", ) and "script" not in str(
        reply.header("content-security-policy")).replace("script-src", "")
    first = client.get("/acme/public/-/packages")
    assert b"fresh-pkg" not in first.body
    assert client.upload_wheel(world.public_id, "fresh-pkg", "1.0",
                               world.tokens["dev"]).code == 201
    assert b"fresh-pkg" in client.get("/acme/public/-/packages").body


def test_the_packages_switch_hides_the_pages(world: World) -> None:
    client = world.client
    client.harness.registry.update_project(world.public_id, packages_enabled=False)
    client.harness.app.caches.clear()
    assert client.get("/acme/public/-/packages").code == 403


def test_refusals_of_pages_are_pages(world: World) -> None:
    """A missing package, a forged form: the status and reason of the one error mapping,
    in an HTML page (escaped) instead of JSON."""
    client = world.client
    reply = client.get("/acme/public/-/packages/99999")
    assert reply.code == 404 and reply.header("content-type") == "text/html; charset=utf-8"
    assert b"<h1>404</h1>" in reply.body
    reply = client.request("POST", "/acme/public/-/packages/1/yank", headers=FORM,
                           auth=world.tokens["mia"], data=b"reason=x")
    assert reply.code == 403 and b"CSRF" in reply.body and b"<!DOCTYPE html>" in reply.body


def test_the_sign_in_form_counts_to_the_bans(tmp_path: Path) -> None:
    """Guessing tokens through the web form gets the address banned like the API does, and
    a banned address cannot sign in through the form either."""
    from twisted.internet.task import Clock

    from pypid.web.ratelimit import FailedAuthLimiter
    from tests.web.helpers import new_client

    limiter = FailedAuthLimiter(Clock(), limit=3, window=60, ban=300, allow=())
    client = new_client(tmp_path, limiter=limiter)
    good = client.harness.registry.create_token("root", "api")[1]
    for _ in range(3):
        assert sign_in(client, "glpat-guess").code == 401
    reply = sign_in(client, good)
    assert reply.code == 429 and "set-cookie" not in reply.headers
    assert client.get("/api/v4/user", auth=("__token__", good)).code == 429
