"""Standard client libraries against a running authgate (contract section 4).

authlib validates the RFC 8414 metadata and refreshes and revokes through its OAuth 2 client;
PyJWT verifies an access token offline from the JWKS. Run by `.ci/run`:

    python oauth_clients.py BASE_URL MAIL_DIR

BASE_URL is a running authgate with `AUTHGATE_MAIL=file://MAIL_DIR`.
"""

import pathlib
import re
import sys
import time

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

BASE, MAIL_DIR = sys.argv[1].rstrip("/"), pathlib.Path(sys.argv[2])
EMAIL, PASSWORD = "oauth-client@example.com", "a long client password"


def latest_code():
    """The code of the newest mail to EMAIL in the mail folder (waits for the outbox)."""
    for _ in range(100):
        mails = sorted(MAIL_DIR.glob("*"), key=lambda path: path.stat().st_mtime)
        for mail in reversed(mails):
            text = mail.read_text(errors="replace")
            code = re.search(r"^(\d{6})\s*$", text, re.MULTILINE)
            if EMAIL in text and code:
                return code.group(1)
        time.sleep(0.1)
    raise AssertionError("no code was mailed")


def signed_in():
    """Registers and verifies EMAIL; the verify-otp answer, with the first token pair."""
    registered = requests.post(
        f"{BASE}/auth/register",
        json={"email": EMAIL, "password": PASSWORD, "password2": PASSWORD},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    verified = requests.post(
        f"{BASE}/auth/verify-otp", json={"email": EMAIL, "otp": latest_code()}, timeout=10
    )
    assert verified.status_code == 200, verified.text
    return verified.json()


def main():
    documents = [
        requests.get(f"{BASE}/.well-known/{name}", timeout=10).json()
        for name in ("oauth-authorization-server", "openid-configuration")
    ]
    for document in documents:
        # Raises on any field RFC 8414 says is wrong or missing.
        AuthorizationServerMetadata(document).validate()
    metadata = documents[0]
    assert metadata["grant_types_supported"] == ["refresh_token"], metadata

    first = signed_in()
    client = OAuth2Session(
        client_id="mobile-app",
        token={
            "access_token": first["access"],
            "refresh_token": first["refresh"],
            "token_type": "Bearer",
            "expires_in": first["expires_in"],
        },
        token_endpoint_auth_method="none",
    )
    refreshed = client.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != first["refresh"], refreshed
    assert refreshed["token_type"] == "Bearer", refreshed

    me = client.get(f"{BASE}/auth/me", timeout=10)
    assert me.status_code == 200 and me.json()["email"] == EMAIL, me.text

    # The access token verifies offline with the published keys, as a resource server would.
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(
        refreshed["access_token"]
    )
    claims = jwt.decode(
        refreshed["access_token"],
        signing_key,
        algorithms=metadata["id_token_signing_alg_values_supported"],
        audience="authgate",
        issuer=metadata["issuer"],
    )
    assert claims["email"] == EMAIL, claims

    revoked = client.revoke_token(
        metadata["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert revoked.status_code == 200, revoked.text
    again = requests.post(
        metadata["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        timeout=10,
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    print("authlib and PyJWT: metadata valid, refresh, offline verification and revocation work")


if __name__ == "__main__":
    main()
