"""Trusted publishing through WebTest: a test OIDC issuer (its own RSA and EC keys, served on
loopback http) signs identity tokens; each check refuses with the reason that names it."""

import re
import time

import pytest
import sqlalchemy as sa
import webtest
from conftest import basic_auth
from dists import wheel_bytes
from oidc_issuer import Issuer
from test_security import BROWSER, login
from test_upload import post

from extrapypi import main
from extrapypi.models import ApiToken, File, JournalEntry, TrustedPublisher, UsedJwt
from extrapypi.permissions import Role
from extrapypi.services import oidc as oidc_service
from extrapypi.services.accounts import get_user
from extrapypi.services.packages import get_package

AUDIENCE = "example.com"
CLAIMS = {
    "repository": "acme/widget",
    "workflow_ref": ("acme/widget/.github/workflows/release.yml@refs/heads/main"),
}


@pytest.fixture(scope="module")
def issuer():
    issuer = Issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def unlisted():
    """An issuer the index does not trust: it must never be asked anything."""
    issuer = Issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def oidc_app(app, base_settings, issuer):
    return main(
        {},
        **base_settings,
        **{
            "extrapypi.oidc.issuers": f"{issuer.url} https://gitlab.example.com",
            "extrapypi.oidc.jwks_refresh_seconds": "0",
        },
    )


@pytest.fixture
def client(oidc_app, clean, issuer):
    issuer.requests.clear()
    issuer.published = {"rsa-1": issuer.rsa_key, "ec-1": issuer.ec_key}
    return webtest.TestApp(oidc_app, extra_environ={"HTTP_HOST": AUDIENCE})


def add_publisher(data, project, issuer_url, claims=CLAIMS, by="alice", pending=None):
    tm, dbsession = data.session()
    with tm:
        publisher = oidc_service.add_publisher(
            dbsession,
            oidc_service.OidcSettings((issuer_url,)),
            project,
            issuer_url,
            dict(claims),
            get_user(dbsession, by),
            pending,
        )
        return publisher.id


@pytest.fixture
def widget(data, issuer):
    data.user("alice", Role.DEVELOPER)
    data.release_file("widget", "1.0", uploader="alice")
    data.release_file("other", "1.0", uploader="alice")
    return add_publisher(data, "widget", issuer.url)


def mint(client, token, status=200):
    return client.post_json(
        "/_/oidc/mint-token", {"token": token}, status=status, expect_errors=status != 200
    )  # status None: any


def refusal(response, status, code, part):
    assert response.status_int == status, response.text
    assert response.content_type == "application/problem+json"
    body = response.json
    assert body["errors"][0]["code"] == code, body
    assert part in body["errors"][0]["description"], body
    assert body["status"] == status and body["detail"] == body["errors"][0]["description"]
    return body["errors"][0]["description"]


def test_audience_is_the_index_host(client):
    assert client.get("/_/oidc/audience").json == {"audience": AUDIENCE}


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_good_token_mints_an_upload_token_for_the_project(
    client, issuer, widget, engine, algorithm
):
    before = time.time()
    minted = mint(client, issuer.token(AUDIENCE, algorithm)).json
    assert minted["success"] is True
    assert 900 <= minted["expires"] - before <= 903
    auth = basic_auth("__token__", minted["token"])
    assert "uploaded" in post(client, wheel_bytes("widget", "2.0"), auth).text
    other = post(client, wheel_bytes("other", "2.0"), auth, status=403)
    assert "is limited to widget, not 'other'" in other.status
    with engine.connect() as connection:
        file = connection.execute(
            sa.select(File.upload_publisher).where(File.filename.like("widget-2.0%"))
        ).one()
        row = connection.execute(sa.select(ApiToken.__table__)).one()
        journal = connection.execute(
            sa.select(JournalEntry.detail).where(JournalEntry.action == "mint token")
        ).scalar()
    assert file.upload_publisher == "acme/widget"
    assert (row.scope, row.projects, row.publisher) == ("upload", "widget", "acme/widget")
    assert "acme/widget via trusted publishing" in journal
    assert "repository=acme/widget" in journal and "run_id=4242" in journal
    assert "ref=refs/heads/main" in journal and "workflow=release" in journal


def test_uploader_shown_as_repository_via_trusted_publishing(client, issuer, widget):
    minted = mint(client, issuer.token(AUDIENCE)).json
    post(client, wheel_bytes("widget", "2.0"), basic_auth("__token__", minted["token"]))
    login(client, "alice")
    page = client.get("/packages/widget/2.0/", headers=BROWSER)
    # the release card names the repository, not the user who registered the publisher
    card = re.search(r"<dt>Uploaded</dt><dd>(.*?)</dd>", page.text, re.S).group(1)
    assert card.endswith(" by acme/widget via trusted publishing"), card
    assert "alice" not in card
    [by] = re.findall(r'<td data-label="By">(.*?)</td>', page.text)
    assert by == "acme/widget via trusted publishing"
    # a release a person uploaded still names them
    page = client.get("/packages/widget/1.0/", headers=BROWSER)
    card = re.search(r"<dt>Uploaded</dt><dd>(.*?)</dd>", page.text, re.S).group(1)
    assert card.endswith(" by alice"), card


def test_wrong_repository_claim_lists_the_claims(client, issuer, widget):
    response = mint(client, issuer.token(AUDIENCE, repository="evil/widget"), 422)
    text = refusal(response, 422, "invalid-publisher", "no trusted publisher for")
    assert "repository=evil/widget" in text and "sub=repo:acme/widget" in text


def test_expired_token(client, issuer, widget):
    now = int(time.time())
    token = issuer.token(AUDIENCE, iat=now - 1000, nbf=now - 1000, exp=now - 61)
    refusal(mint(client, token, 422), 422, "expired-token", "the token has expired")


def test_expiry_leeway_is_sixty_seconds(client, issuer, widget):
    now = int(time.time())
    token = issuer.token(AUDIENCE, iat=now - 1000, nbf=now - 1000, exp=now - 30)
    assert mint(client, token).json["success"] is True


def test_not_yet_valid(client, issuer, widget):
    token = issuer.token(AUDIENCE, nbf=int(time.time()) + 600)
    refusal(mint(client, token, 422), 422, "not-yet-valid", "not valid yet")


def test_wrong_audience(client, issuer, widget):
    response = mint(client, issuer.token("pypi"), 422)
    refusal(response, 422, "invalid-audience", "audience is 'pypi'; this index expects")


def test_replayed_jti(client, issuer, widget, engine):
    token = issuer.token(AUDIENCE, jti="once-only")
    assert mint(client, token).json["success"]
    response = mint(client, token, 422)
    refusal(response, 422, "replayed-token", "jti 'once-only') was used already")
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(ApiToken)).scalar() == 1


def test_token_without_jti_mints_once(client, issuer, widget):
    token = issuer.token(AUDIENCE, jti=None)
    assert mint(client, token).json["success"]
    refusal(mint(client, token, 422), 422, "replayed-token", "was used already")


def test_expired_jtis_and_old_minted_tokens_are_pruned(client, issuer, widget, data, engine):
    from datetime import timedelta

    from extrapypi.models.meta import utcnow

    old = mint(client, issuer.token(AUDIENCE)).json["token"][6:18]
    recent = mint(client, issuer.token(AUDIENCE)).json["token"][6:18]
    tm, dbsession = data.session()
    with tm:
        dbsession.add(UsedJwt(key="0" * 64, expires=utcnow() - timedelta(seconds=1)))
        dbsession.get(ApiToken, old).expires = utcnow() - timedelta(days=1, seconds=1)
        dbsession.get(ApiToken, recent).expires = utcnow() - timedelta(hours=23)
    newest = mint(client, issuer.token(AUDIENCE)).json["token"][6:18]
    with engine.connect() as connection:
        keys = connection.execute(sa.select(UsedJwt.key)).scalars().all()
        tokens = set(connection.execute(sa.select(ApiToken.id)).scalars())
    assert len(keys) == 3 and "0" * 64 not in keys
    assert tokens == {recent, newest}  # listed a day past expiry, then deleted


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_algorithm_outside_the_allow_list(client, issuer, widget, algorithm):
    import jwt

    claims = issuer.claims(AUDIENCE)
    key = None if algorithm == "none" else "a-shared-secret-of-thirty-two-bytes!"
    token = jwt.encode(claims, key, algorithm=algorithm, headers={"kid": "rsa-1"})
    response = mint(client, token, 422)
    refusal(response, 422, "invalid-algorithm", f"signed with {algorithm!r}; only RS256 and ES256")
    assert issuer.requests == []  # refused before any key was fetched


def test_unknown_kid(client, issuer, widget):
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = issuer.sign(issuer.claims(AUDIENCE), kid="rsa-9", key=stranger)
    response = mint(client, token, 422)
    refusal(response, 422, "unknown-key", "signing key 'rsa-9', which")
    assert issuer.requests.count("/jwks") >= 1


def test_issuer_down_is_a_503_that_says_so(issuer):
    """A listed issuer that does not answer: 503 naming it; asked again only after
    jwks_refresh_seconds, the requests between refused the same way (never a 500)."""
    down = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings = oidc_service.OidcSettings((down,), timeout=1)
    keys = oidc_service.KeyCache(settings)
    token = issuer.token(AUDIENCE, iss=down)
    with pytest.raises(oidc_service.OidcRefused) as first:
        oidc_service.verify_identity_token(token, settings, keys, AUDIENCE)
    assert (first.value.code, first.value.status) == ("issuer-unavailable", 503)
    assert f"could not fetch the signing keys of {down}" in first.value.description
    with pytest.raises(oidc_service.OidcRefused) as again:
        oidc_service.verify_identity_token(token, settings, keys, AUDIENCE)
    assert (again.value.code, again.value.status) == ("issuer-unavailable", 503)
    assert "try again in a minute" in again.value.description


def test_key_rotation_refetches_the_jwks(client, issuer, widget):
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert mint(client, issuer.token(AUDIENCE)).json["success"]  # keys cached
    fetches = issuer.requests.count("/jwks")
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.published = {**issuer.published, "rsa-2": new_key}
    token = issuer.sign(issuer.claims(AUDIENCE), kid="rsa-2", key=new_key)
    assert mint(client, token).json["success"]
    assert issuer.requests.count("/jwks") == fetches + 1


def test_signature_by_another_key(client, issuer, widget):
    from cryptography.hazmat.primitives.asymmetric import rsa

    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = issuer.sign(issuer.claims(AUDIENCE), kid="rsa-1", key=forger)
    refusal(mint(client, token, 422), 422, "invalid-signature", "signature is not")


def test_issuer_not_in_the_list_is_never_asked(client, issuer, unlisted, widget):
    token = unlisted.token(AUDIENCE)
    response = mint(client, token, 422)
    refusal(response, 422, "unknown-issuer", f"issuer {unlisted.url!r} is not one this index")
    assert unlisted.requests == []


def test_malformed_bodies(client):
    bad = client.post("/_/oidc/mint-token", "not json", status=400, expect_errors=True)
    refusal(bad, 400, "invalid-payload", "must be JSON")
    refusal(mint(client, 42, 422), 422, "invalid-payload", "must be the JWT")
    refusal(mint(client, "abc.def", 422), 422, "invalid-token", "not a well-formed JWT")


def test_session_cookie_is_not_an_identity_here(client, issuer, widget, data):
    """A logged-in browser's cookie neither authenticates nor trips CSRF on these endpoints."""
    login(client, "alice")
    response = mint(client, issuer.token(AUDIENCE, repository="nobody/else"), 422)
    refusal(response, 422, "invalid-publisher", "repository=nobody/else")
    cross = client.post_json(
        "/_/oidc/mint-token",
        {"token": issuer.token(AUDIENCE)},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        status=403,
    )
    assert "another site" in cross.text


def test_burn_revokes_the_minted_token(client, issuer, widget):
    minted = mint(client, issuer.token(AUDIENCE)).json
    auth = basic_auth("__token__", minted["token"])
    burnt = client.post("/_/oidc/burn-token", headers=auth)
    assert burnt.json == {"success": True}
    refused = post(client, wheel_bytes("widget", "2.0"), auth, status=401)
    assert "is revoked" in refused.status
    again = client.post_json(
        "/_/oidc/burn-token", {"token": minted["token"]}, status=422, expect_errors=True
    )
    refusal(again, 422, "invalid-token", "is revoked")


def test_burn_by_json_body_and_not_api_tokens(client, issuer, widget, data):
    from test_tokens import make_token

    minted = mint(client, issuer.token(AUDIENCE)).json
    assert client.post_json("/_/oidc/burn-token", {"token": minted["token"]}).json["success"]
    api = make_token(data, "alice")
    response = client.post_json("/_/oidc/burn-token", {"token": api}, status=422)
    refusal(response, 422, "invalid-token", "only tokens minted by trusted publishing")


def test_pending_publisher_creates_the_project_then_publishes_it(client, issuer, data, engine):
    data.user("alice", Role.DEVELOPER)
    data.user("bob", Role.DEVELOPER)
    pending = add_publisher(data, "Fresh_Widget", issuer.url)
    other = add_publisher(data, "fresh-widget", issuer.url, {"repository": "bob/x"}, by="bob")
    minted = mint(client, issuer.token(AUDIENCE)).json
    auth = basic_auth("__token__", minted["token"])
    assert "uploaded" in post(client, wheel_bytes("fresh-widget", "1.0"), auth).text
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "fresh-widget")
        assert [m.username for m in package.maintainers] == ["alice"]
        publisher = dbsession.get(TrustedPublisher, pending)
        assert publisher.package_id == package.id and publisher.pending_name is None
        assert dbsession.get(TrustedPublisher, other) is None  # bob's pending one is gone


def test_pending_publisher_needs_a_developer(data, issuer):
    data.user("carol", Role.MAINTAINER)
    with pytest.raises(oidc_service.PublisherError, match="need a developer or admin"):
        add_publisher(data, "brand-new", issuer.url, by="carol")


def test_publisher_of_a_demoted_owner_mints_nothing_useful(client, issuer, widget, data):
    from extrapypi.services import accounts

    tm, dbsession = data.session()
    with tm:
        accounts.change_role(dbsession, get_user(dbsession, "alice"), Role.INSTALLER)
        package = get_package(dbsession, "widget")
        package.maintainers.clear()
    minted = mint(client, issuer.token(AUDIENCE)).json
    auth = basic_auth("__token__", minted["token"])
    refused = post(client, wheel_bytes("widget", "2.0"), auth, status=403)
    assert "may not upload to 'widget'" in refused.status


def test_trusted_publishing_off_without_issuers(testapp):
    response = testapp.post_json("/_/oidc/mint-token", {"token": "x"}, status=404)
    refusal(response, 404, "not-enabled", "trusted publishing is off")
    assert testapp.get("/_/oidc/audience", status=404).json["errors"][0]["code"] == "not-enabled"


@pytest.mark.parametrize("path", ["/legacy/", "/", "/simple/", "/legacy"])
def test_pep807_discovery(client, path):
    from urllib.parse import quote_plus

    response = client.get(
        f"/.well-known/pytp?discover={quote_plus(path)}",
        headers={"Accept": "application/vnd.pypi.pytp.v1+json"},
    )
    assert response.content_type == "application/vnd.pypi.pytp.v1+json"
    assert response.json == {
        "audience-endpoint": "http://example.com/_/oidc/audience",
        "token-mint-endpoint": "http://example.com/_/oidc/mint-token",
        "features": ["multi-use-token"],
        "default-features": ["multi-use-token"],
    }


def test_pep807_discovery_refusals(client, testapp):
    unknown = client.get("/.well-known/pytp?discover=%2Fsomewhere%2F", status=404)
    assert unknown.content_type == "application/problem+json"
    assert unknown.json["status"] == 404 and "'/somewhere/'" in unknown.json["detail"]
    wrong = client.get(
        "/.well-known/pytp?discover=%2F", headers={"Accept": "text/html"}, status=406
    )
    assert wrong.json["title"] == "Not Acceptable"
    assert client.get("/.well-known/pytp", status=400).json["errors"][0]["code"] == "missing-key"
    assert testapp.get("/.well-known/pytp?discover=%2F", status=404).json["status"] == 404


def test_unsupported_feature(client, issuer, widget):
    response = client.post_json(
        "/_/oidc/mint-token",
        {"token": issuer.token(AUDIENCE), "features": ["single-use-token"]},
        status=422,
    )
    refusal(response, 422, "unsupported-feature", "multi-use-token")


def test_issuer_settings_refuse_plain_http_off_loopback():
    with pytest.raises(oidc_service.OidcConfigError, match="must use https"):
        oidc_service.parse_oidc_settings({"extrapypi.oidc.issuers": "http://ci.example.com"})
    settings = oidc_service.parse_oidc_settings(
        {"extrapypi.oidc.issuers": "https://a.example http://127.0.0.1:8 http://localhost:9"}
    )
    assert settings.issuers == ("https://a.example", "http://127.0.0.1:8", "http://localhost:9")


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": 10**20},
        {"aud": {"x": 1}},
        {"exp": "soon"},
        {"iat": 10**20},
        {"repository": {"nested": True}},
    ],
    ids=["huge-exp", "aud-object", "exp-text", "iat-future", "claim-object"],
)
def test_hostile_claims_get_a_4xx(client, issuer, widget, overrides):
    response = mint(client, issuer.token(AUDIENCE, **overrides), None)
    assert 200 <= response.status_int < 500, response.text


@pytest.mark.parametrize(
    "body", [b"[]", b'{"token": ["x"]}', b'{"token": null}', b"\xff\xfe", b"{" * 5000, b"[" * 60000]
)
def test_hostile_bodies_get_a_4xx(client, body):
    response = client.post(
        "/_/oidc/mint-token", body, content_type="application/json", expect_errors=True
    )
    assert 400 <= response.status_int < 500 and response.json["errors"], response.text
    burn = client.post(
        "/_/oidc/burn-token", body, content_type="application/json", expect_errors=True
    )
    assert 400 <= burn.status_int < 500 and burn.json["errors"], burn.text


def test_hostile_headers_get_a_4xx(client, issuer, widget):
    import base64
    import json as json_module

    def part(value) -> str:
        raw = json_module.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    payload = part(issuer.claims(AUDIENCE))
    for header in ({"alg": ["RS256"]}, {"alg": "RS256", "kid": 7}, {"alg": "RS256", "kid": None}):
        token = f"{part(header)}.{payload}.c2ln"
        response = mint(client, token, None)
        assert 400 <= response.status_int < 500, response.text
    deep = base64.urlsafe_b64encode(b"[" * 9000).rstrip(b"=").decode()
    for token in (f"{deep}.{payload}.c2ln", f"{part({'alg': 'RS256'})}.{deep}.c2ln"):
        refusal(mint(client, token, 422), 422, "invalid-token", "not a well-formed JWT")
    listed = part(issuer.claims(AUDIENCE, iss=[issuer.url]))
    response = mint(client, f"{part({'alg': 'RS256', 'kid': 'rsa-1'})}.{listed}.c2ln", 422)
    refusal(response, 422, "unknown-issuer", "is not one this index trusts")
