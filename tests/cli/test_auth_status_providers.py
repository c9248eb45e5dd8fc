"""``session-buddy auth status`` with identity providers: each issuer's key ids and when they
were fetched, the resource URL; a provider down is a warning, not a failed configuration;
``token revoke`` on a provider token."""

from __future__ import annotations

from collections.abc import Callable

from testkit.cli import CliEnv, flat
from testkit.cli import table_row as row
from testkit.oidc import OpenIDProvider

MakeProvider = Callable[..., OpenIDProvider]
DEFAULT_RESOURCE = "http://127.0.0.1:8678/mcp"


def test_status_shows_each_issuers_keys_and_the_resource(
    cli: CliEnv, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    cli.set("SESSION_BUDDY_OAUTH_ISSUER", op.issuer)
    result = cli.run("auth", "status")
    assert result.exit_code == 0, result.output
    assert row(result.stdout, "Resource URL") == DEFAULT_RESOURCE
    shown = flat(result.stdout)
    for kid in op.kids:
        assert kid in shown
    assert "fetched" in shown


def test_a_provider_down_is_a_warning(cli: CliEnv, make_openid_provider: MakeProvider) -> None:
    op = make_openid_provider()
    cli.set("SESSION_BUDDY_OAUTH_ISSUER", op.issuer)
    op.stop()
    result = cli.run("auth", "status")
    assert result.exit_code == 0, result.output
    assert "notfetched" in flat(result.stdout)
    assert f"identity provider {op.issuer}" in result.stderr


def test_token_revoke_revokes_a_provider_token(
    cli: CliEnv, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    cli.set("SESSION_BUDDY_OAUTH_ISSUER", op.issuer)
    token = op.client_credentials("svc-admin", resource=DEFAULT_RESOURCE).access_token
    assert cli.run("token", "verify", token).exit_code == 0
    revoked = cli.run("token", "revoke", token)
    assert revoked.exit_code == 0, revoked.output
    assert token not in revoked.output
    again = cli.run("token", "verify", token)
    assert again.exit_code != 0
    assert "revoked" in again.output
