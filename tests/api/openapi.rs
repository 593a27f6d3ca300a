//! The OpenAPI document is a product: checked in, complete, and never out of date.

use serde_json::Value;

fn generated() -> Value {
    serde_json::from_str(&authgate::api::openapi().spec()).unwrap()
}

#[test]
fn the_checked_in_document_matches_the_code() {
    let checked_in: Value = serde_json::from_str(include_str!("../../openapi/openapi.json"))
        .expect("openapi/openapi.json parses");
    assert!(
        checked_in == generated(),
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_operation_is_described_with_its_errors() {
    let document = generated();
    let paths = document["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/auth/register"),
        ("post", "/auth/verify-otp"),
        ("post", "/auth/resend-otp"),
        ("post", "/auth/login"),
        ("post", "/auth/token/refresh"),
        ("post", "/auth/logout"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/.well-known/openid-configuration"),
        ("post", "/auth/forgot-password"),
        ("post", "/auth/resend-password-reset-otp"),
        ("post", "/auth/verify-password-reset-otp"),
        ("post", "/auth/reset-password"),
        ("get", "/auth/me"),
        ("patch", "/auth/me"),
        ("put", "/auth/me"),
        ("get", "/auth/settings"),
        ("get", "/admin/users"),
        ("post", "/admin/users"),
        ("get", "/admin/users/{id}"),
        ("patch", "/admin/users/{id}"),
        ("post", "/admin/users/{id}/unlock"),
        ("post", "/admin/users/{id}/password-reset"),
        ("get", "/admin/users/{id}/sessions"),
        ("delete", "/admin/users/{id}/sessions/{sid}"),
        ("get", "/admin/audit"),
        ("post", "/admin/audit/{id}/revert"),
        ("get", "/admin/stats"),
        ("get", "/health"),
        ("get", "/ready"),
    ] {
        let operation = &paths[path][method];
        assert!(
            operation["summary"].is_string(),
            "{method} {path} has no summary"
        );
        assert!(
            operation["tags"]
                .as_array()
                .is_some_and(|tags| !tags.is_empty()),
            "{method} {path} has no tag"
        );
        assert!(
            operation["responses"]["500"].is_object(),
            "{method} {path} does not document 500"
        );
    }
    let register = &paths["/auth/register"]["post"]["responses"];
    for status in ["201", "400", "403", "409", "429", "503"] {
        assert!(
            register[status].is_object(),
            "register does not document {status}"
        );
    }
    assert!(
        register["403"]["description"]
            .as_str()
            .unwrap()
            .contains("role_not_allowed")
    );
    let revert = &paths["/admin/audit/{id}/revert"]["post"]["responses"];
    for (status, code) in [
        ("400", "not_revertible"),
        ("403", "forbidden"),
        ("404", "not_found"),
        ("409", "conflict"),
        ("409", "last_admin"),
    ] {
        assert!(
            revert[status]["description"]
                .as_str()
                .is_some_and(|description| description.contains(code)),
            "revert does not document {code}"
        );
    }
}

#[test]
fn the_bearer_scheme_is_declared_for_authorize() {
    let document = generated();
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    let bearer = schemes.values().next().unwrap();
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert!(document["paths"]["/auth/me"]["get"]["security"].is_array());
}
