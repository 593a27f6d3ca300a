//! The command line of the real binary (§1): what an operator sees on a terminal.

use std::process::{Command, Output};

/// Runs `authgate` with only `env` set (no `.env`: it runs in an empty directory).
fn authgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(scratch.path())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_never_shows_a_secret_value() {
    let output = authgate(
        &["serve", "--help"],
        &[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("AUTHGATE_MAIL", "smtps://u:hunter2@mail.x.org"),
            ("AUTHGATE_ENCRYPTION_KEYS", "k1:hunter2"),
            ("AUTHGATE_AUDIENCE", "my-audience"),
        ],
    );

    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(help.contains("[env: DATABASE_URL]"), "{help}");
    assert!(
        help.contains("[env: AUTHGATE_AUDIENCE=my-audience]"),
        "{help}"
    );
    assert!(!help.contains("hunter2"), "{help}");
}

#[test]
fn a_bad_value_stops_start_up_naming_its_variable_never_a_secret() {
    let output = authgate(&["migrate"], &[("AUTHGATE_ACCESS_TTL", "soon")]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "authgate: invalid AUTHGATE_ACCESS_TTL=\"soon\": \
         expected a duration like 90s, 10m, 24h or 7d\n"
    );

    let output = authgate(&[], &[("DATABASE_URL", "mysql://u:hunter2@db/x")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid DATABASE_URL="), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn openapi_needs_no_configuration() {
    let output = authgate(
        &["openapi"],
        &[
            ("AUTHGATE_ACCESS_TTL", "soon"),
            ("DATABASE_URL", "nonsense"),
        ],
    );

    assert!(output.status.success(), "{}", text(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["info"]["title"], "authgate");
}

#[test]
fn an_unknown_command_exits_non_zero_naming_it() {
    let output = authgate(&["frobnicate"], &[]);

    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("'frobnicate'"));
}
