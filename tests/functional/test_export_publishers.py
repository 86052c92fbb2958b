"""``extrapypi export`` then ``import``: trusted publishers (pending ones too) and API tokens
(their keyed hashes) come back as they were, and a restored token authenticates again."""

import json

import sqlalchemy as sa
from test_cli import extrapypi
from test_restore import empty_everything
from test_security import PIP
from test_tokens import make_token, token_auth

from extrapypi.models import ApiToken, Package, TrustedPublisher
from extrapypi.permissions import Role
from extrapypi.services import oidc as oidc_service
from extrapypi.services.accounts import get_user

GITHUB = "https://token.actions.githubusercontent.com"


def publisher_rows(engine) -> set:
    with engine.connect() as connection:
        return {
            (row.normalized_name, row.pending_name, row.issuer, json.dumps(row.claims), row.created)
            for row in connection.execute(
                sa.select(
                    Package.normalized_name,
                    TrustedPublisher.pending_name,
                    TrustedPublisher.issuer,
                    TrustedPublisher.claims,
                    TrustedPublisher.created,
                ).outerjoin(Package, Package.id == TrustedPublisher.package_id)
            )
        }


def token_rows(engine) -> set:
    columns = [c for c in ApiToken.__table__.c if c.name not in ("user_id", "publisher_ids")]
    with engine.connect() as connection:
        return {tuple(row) for row in connection.execute(sa.select(*columns))}


def test_publishers_and_tokens_round_trip(
    app, testapp, data, engine, base_settings, ini_file, tmp_path, capsys
):
    data.user("alice", Role.DEVELOPER)
    data.release_file("widget", "1.0", uploader="alice")
    tm, dbsession = data.session()
    with tm:
        settings = oidc_service.OidcSettings((GITHUB,))
        alice = get_user(dbsession, "alice")
        claims = {"repository": "acme/widget", "environment": "release"}
        oidc_service.add_publisher(dbsession, settings, "widget", GITHUB, claims, alice)
        oidc_service.add_publisher(
            dbsession, settings, "brand-new", GITHUB, {"repository": "acme/new"}, alice
        )
    token = make_token(data, "alice", name="ci-read", scope="read", expires_days=30)
    make_token(data, "alice", name="ci-upload", projects=["widget"])
    publishers_before, tokens_before = publisher_rows(engine), token_rows(engine)
    assert len(publishers_before) == 2 and len(tokens_before) == 2

    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    manifest = json.loads((export / "manifest.json").read_text())
    assert [(p["project"], p["pending"]) for p in manifest["trusted_publishers"]] == [
        ("widget", False),
        ("brand-new", True),
    ]
    assert token.split("-", 2)[2] not in (export / "manifest.json").read_text()

    empty_everything(app, engine, base_settings)
    app.registry["extrapypi.token_cache"].clear()
    capsys.readouterr()
    assert extrapypi(["import", ini_file, str(export)]) == 0
    out = capsys.readouterr().out
    assert "2 trusted publishers restored; 2 API tokens restored" in out
    assert publisher_rows(engine) == publishers_before
    assert token_rows(engine) == tokens_before
    testapp.get("/simple/widget/", headers={**PIP, **token_auth(token)}, status=200)

    capsys.readouterr()
    assert extrapypi(["import", ini_file, str(export)]) == 0  # again: nothing new
    assert "trusted publishers restored" not in capsys.readouterr().out
    assert publisher_rows(engine) == publishers_before
