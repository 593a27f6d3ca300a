//! The command line of the real binary (§1): what an operator sees on a terminal.

use std::{
    path::Path,
    process::{Command, Output},
};

/// Runs `authgate` with only `env` set (no `.env`: it runs in an empty directory).
fn authgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    authgate_in(scratch.path(), args, env)
}

/// Runs `authgate` in `dir` with only `env` set.
fn authgate_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        // Several processes run at once: none takes the default metrics port.
        .env("AUTHGATE_METRICS_LISTEN", "off")
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Everything in `dir`, by name.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_port_in_use_stops_start_up_before_anything_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let scratch = tempfile::tempdir().unwrap();

    let output = authgate_in(scratch.path(), &["serve"], &[("AUTHGATE_LISTEN", &address)]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert_eq!(
        entries(scratch.path()),
        Vec::<String>::new(),
        "no database, no key"
    );
}

#[test]
fn a_host_name_in_the_listen_address_resolves() {
    let scratch = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    // `localhost` is accepted and resolved (the port is taken, so start-up stops right after).
    let output = authgate_in(
        scratch.path(),
        &["serve"],
        &[("AUTHGATE_LISTEN", &format!("localhost:{port}"))],
    );
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("AUTHGATE_LISTEN"), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[test]
fn a_sqlite_file_that_cannot_be_opened_is_named_with_the_cause() {
    let scratch = tempfile::tempdir().unwrap();
    // A folder on the way is a file: not even root can create the database there.
    std::fs::write(scratch.path().join("blocker"), "").unwrap();
    let path = scratch.path().join("blocker/authgate.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());

    let output = authgate_in(scratch.path(), &["migrate"], &[("DATABASE_URL", &url)]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot open the database file {}", path.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
}

#[test]
fn a_refused_postgres_connection_names_host_port_and_cause_never_the_password() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{closed}/authgate");
    let started = std::time::Instant::now();

    let output = authgate(&["migrate"], &[("DATABASE_URL", &url)]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("authgate at 127.0.0.1:{closed}")),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "a refusal is reported at once"
    );
}

#[test]
fn keys_list_reads_without_creating_and_aligns_its_columns() {
    let scratch = tempfile::tempdir().unwrap();

    let missing = authgate_in(scratch.path(), &["keys", "list"], &[]);

    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        text(&missing.stderr),
        "authgate: cannot open the database file data/authgate.db: no such file (this command \
         creates nothing; `authgate migrate` does)\n"
    );
    assert_eq!(
        entries(scratch.path()),
        Vec::<String>::new(),
        "a read-only command creates nothing"
    );

    for _ in 0..2 {
        let rotated = authgate_in(scratch.path(), &["keys", "rotate"], &[]);
        assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    }
    let listed = authgate_in(scratch.path(), &["keys", "list"], &[]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let stdout = text(&listed.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let header = lines[0];
    for column in ["alg", "state", "created", "retired", "published until"] {
        let at = header.find(column).unwrap();
        for row in &lines[1..] {
            let before = &row[..at];
            assert!(
                before.ends_with("  "),
                "{column} starts at the same place in each row:\n{stdout}"
            );
            assert!(
                !row[at..].starts_with(' '),
                "{column} starts at the same place in each row:\n{stdout}"
            );
        }
    }
    assert!(
        lines[1].contains("current") && lines[2].contains("retired"),
        "{stdout}"
    );
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
