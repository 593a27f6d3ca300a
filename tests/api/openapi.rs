//! The OpenAPI document is a product: checked in, complete, and never out of date.

use serde_json::Value;

fn generated() -> Value {
    serde_json::from_str(&authgate::api::document_and_ui().0).unwrap()
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

/// Every operation of the service, in the order the document lists its tags.
const OPERATIONS: &[(&str, &str)] = &[
    ("post", "/auth/register"),
    ("post", "/auth/verify-otp"),
    ("post", "/auth/resend-otp"),
    ("post", "/auth/login"),
    ("post", "/auth/token/refresh"),
    ("post", "/auth/logout"),
    ("post", "/oauth/token"),
    ("post", "/oauth/revoke"),
    ("post", "/auth/forgot-password"),
    ("post", "/auth/resend-password-reset-otp"),
    ("post", "/auth/verify-password-reset-otp"),
    ("post", "/auth/reset-password"),
    ("get", "/auth/me"),
    ("patch", "/auth/me"),
    ("put", "/auth/me"),
    ("post", "/auth/change-password"),
    ("get", "/auth/username-available"),
    ("post", "/auth/restore"),
    ("post", "/auth/me/delete"),
    ("put", "/auth/me/avatar"),
    ("delete", "/auth/me/avatar"),
    ("get", "/avatars/{user_id}"),
    ("post", "/auth/me/email"),
    ("post", "/auth/me/email/confirm"),
    ("get", "/auth/me/export"),
    ("get", "/auth/me/events"),
    ("get", "/auth/sessions"),
    ("delete", "/auth/sessions/{id}"),
    ("post", "/auth/logout-all"),
    ("get", "/auth/mfa"),
    ("post", "/auth/mfa/totp/setup"),
    ("post", "/auth/mfa/totp/enable"),
    ("post", "/auth/mfa/email/enable"),
    ("post", "/auth/mfa/email/confirm"),
    ("delete", "/auth/mfa/{method}"),
    ("post", "/auth/mfa/recovery-codes"),
    ("post", "/auth/mfa/verify"),
    ("post", "/auth/mfa/challenge"),
    ("get", "/auth/devices"),
    ("delete", "/auth/devices"),
    ("delete", "/auth/devices/{id}"),
    ("get", "/admin/users"),
    ("post", "/admin/users"),
    ("get", "/admin/users/{id}"),
    ("patch", "/admin/users/{id}"),
    ("delete", "/admin/users/{id}"),
    ("post", "/admin/users/{id}/disable"),
    ("post", "/admin/users/{id}/enable"),
    ("post", "/admin/users/{id}/logout"),
    ("post", "/admin/users/{id}/anonymize"),
    ("post", "/admin/users/{id}/unlock"),
    ("post", "/admin/users/{id}/password-reset"),
    ("post", "/admin/users/{id}/mfa/reset"),
    ("get", "/admin/users/{id}/sessions"),
    ("delete", "/admin/users/{id}/sessions/{sid}"),
    ("get", "/admin/audit"),
    ("post", "/admin/audit/{id}/revert"),
    ("get", "/admin/stats"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/auth/settings"),
];

#[test]
fn every_operation_is_there_once_described_with_its_errors() {
    let document = generated();
    let paths = document["paths"].as_object().unwrap();
    // An operation of one API group can hide another group's on the same path (the
    // document is a map); listing them all catches that.
    let mut listed: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().unwrap().keys();
            methods.map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let mut expected: Vec<(String, String)> = OPERATIONS
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);

    let tags: Vec<&str> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["name"].as_str().unwrap())
        .collect();
    let mut last_tag = 0;
    for (method, path) in OPERATIONS {
        let operation = &paths[*path][*method];
        assert!(
            operation["summary"].is_string(),
            "{method} {path} has no summary"
        );
        let operation_tags = operation["tags"].as_array().unwrap();
        assert_eq!(operation_tags.len(), 1, "{method} {path} is under one tag");
        let tag = tags
            .iter()
            .position(|tag| operation_tags[0] == *tag)
            .unwrap_or_else(|| panic!("{method} {path}: its tag is declared"));
        assert!(
            tag >= last_tag,
            "{method} {path}: tags in the order a newcomer walks the flows ({tags:?})"
        );
        last_tag = tag;
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

#[test]
fn the_document_is_true_to_the_service_and_its_readers() {
    let document = generated();
    assert_eq!(
        document["servers"],
        serde_json::json!([{"url": "/"}]),
        "Swagger UI calls the origin it was loaded from"
    );
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|text| !text.trim().is_empty()),
                    "{method} {path}: {status} has no description"
                );
            }
        }
    }
    let ready = &document["paths"]["/ready"]["get"]["responses"]["503"];
    assert!(
        ready["description"].as_str().unwrap().contains("not_ready"),
        "{ready}"
    );
    let text = document.to_string();
    assert!(
        !text.contains("`Debug`"),
        "internal doc comments stay out of the document"
    );
    let scheme = &document["components"]["securitySchemes"]["BearerAuth"];
    assert!(
        scheme["description"]
            .as_str()
            .unwrap()
            .contains("paste the token alone"),
        "{scheme}"
    );
    let token = &document["paths"]["/oauth/token"]["post"]["requestBody"]["content"];
    assert!(
        token["application/x-www-form-urlencoded"].is_object(),
        "{token}"
    );
}
