//! `authgate users …`: accounts from the command line, for the first admin and for scripts.
//! Each command runs the flow behind the admin API, so the same checks apply and the same
//! audit events are written (with no actor, and `authgate-cli` as the user agent). What a
//! command did goes to stdout; logs and warnings go to stderr, so `--json` output is JSON
//! alone.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand};
use poem_openapi::types::MaybeUndefined;

use super::start;
use crate::{
    api::error::ApiError,
    app::AppState,
    config::{Config, ConfigError},
    domain::{Account, AuthError, ClientInfo},
    flows::{
        admin_lifecycle::{DisableRequest, Operator},
        admin_users::{AdminUpdateRequest, CreateUserRequest, UserListQuery},
        listing::MAX_LIMIT,
    },
};

#[derive(Subcommand)]
pub enum Users {
    /// Create an account; its password is read from standard input, unless --invite mails
    /// an invitation to set one
    Create(Create),
    /// List accounts, newest first
    List(List),
    /// Give an account another role; losing admin ends its sessions, and the last active
    /// admin cannot lose it
    SetRole(SetRole),
    /// Disable an account and revoke its sessions
    ///
    /// The account can no longer sign in, and every session is revoked, as the admin API does.
    /// The last active admin cannot be disabled.
    Disable(ByEmail),
    /// Enable a disabled account again
    Enable(ByEmail),
}

#[derive(Args)]
pub struct Create {
    /// The account's address
    #[arg(long)]
    email: String,
    /// One of AUTHGATE_ROLES (admin included); by default the first self-assignable role
    #[arg(long)]
    role: Option<String>,
    /// A public handle for the account
    #[arg(long)]
    username: Option<String>,
    /// Mail the address a code to set the password with, instead of reading a password
    /// from standard input; the account is verified when the code is used
    #[arg(long)]
    invite: bool,
    #[command(flatten)]
    config: Config,
}

#[derive(Args)]
pub struct List {
    /// Only accounts holding this role
    #[arg(long)]
    role: Option<String>,
    /// Print one JSON array of user objects, as the API shows them
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: Config,
}

#[derive(Args)]
pub struct ByEmail {
    /// The account's address
    email: String,
    #[command(flatten)]
    config: Config,
}

#[derive(Args)]
pub struct SetRole {
    /// The account's address
    email: String,
    /// One of AUTHGATE_ROLES
    role: String,
    #[command(flatten)]
    config: Config,
}

pub async fn run(command: Users, dotenv: Result<(), ConfigError>) -> Result<(), String> {
    match command {
        Users::Create(create) => {
            // Read before anything starts, so a script piping the password in gets its
            // answer as soon as it can.
            let password = if create.invite {
                None
            } else {
                Some(read_password(&create.email)?)
            };
            let state = start(create.config, dotenv).await?;
            let request = CreateUserRequest {
                email: create.email,
                role: create.role,
                username: create.username,
                password,
                ..Default::default()
            };
            let account = state
                .admin_users
                .create(None, request, &command_line())
                .await
                .map_err(describe)?;
            if create.invite {
                // Delivered now if the mail server takes it; else a running instance's
                // worker sends it from the outbox.
                if let Err(err) = state.outbox.deliver_due().await {
                    tracing::warn!(error = %err, "the invitation waits in the outbox");
                }
                println!(
                    "created {} ({}) with role {}; an invitation to set a password was mailed",
                    account.email, account.id, account.role
                );
            } else {
                println!(
                    "created {} ({}) with role {}; it can sign in now",
                    account.email, account.id, account.role
                );
            }
            Ok(())
        }
        Users::List(list) => {
            let state = start(list.config, dotenv).await?;
            let accounts = every_account(&state, list.role).await?;
            if list.json {
                let json =
                    serde_json::to_string_pretty(&accounts).map_err(|err| err.to_string())?;
                println!("{json}");
            } else {
                print_table(&accounts);
            }
            Ok(())
        }
        Users::SetRole(set) => {
            let state = start(set.config, dotenv).await?;
            let account = account_by_email(&state, &set.email).await?;
            let request = AdminUpdateRequest {
                role: MaybeUndefined::Value(set.role),
                ..Default::default()
            };
            let updated = state
                .admin_users
                .update(None, account.id, request, &command_line())
                .await
                .map_err(describe)?;
            if updated.role == account.role {
                println!("{} already has role {}", updated.email, updated.role);
            } else {
                println!(
                    "{} now has role {} (was {})",
                    updated.email, updated.role, account.role
                );
            }
            Ok(())
        }
        Users::Disable(target) => set_enabled(target, false, dotenv).await,
        Users::Enable(target) => set_enabled(target, true, dotenv).await,
    }
}

/// `users disable` and `users enable`: the admin API's change, made by the operator.
async fn set_enabled(
    target: ByEmail,
    enable: bool,
    dotenv: Result<(), ConfigError>,
) -> Result<(), String> {
    let state = start(target.config, dotenv).await?;
    let account = account_by_email(&state, &target.email).await?;
    let lifecycle = &state.admin_lifecycle;
    let outcome = if enable {
        lifecycle
            .enable(Operator::CommandLine, account.id, &command_line())
            .await
    } else {
        lifecycle
            .disable(
                Operator::CommandLine,
                account.id,
                DisableRequest::default(),
                &command_line(),
            )
            .await
    };
    let account = outcome.map_err(describe)?;
    if enable {
        println!(
            "enabled {} ({}); its status is {}",
            account.email,
            account.id,
            account.status.as_str()
        );
    } else {
        println!(
            "disabled {} ({}); its sessions are revoked",
            account.email, account.id
        );
    }
    Ok(())
}

/// The account a command names by its address.
async fn account_by_email(state: &AppState, email: &str) -> Result<Account, String> {
    match state.admin_users.by_email(email).await {
        Err(AuthError::NotFound) => Err(format!("no account has the address {email} (not_found)")),
        Err(AuthError::Validation(_)) => Err(format!("{email:?} is not a valid email address")),
        found => found.map_err(describe),
    }
}

/// How the command line shows up in the audit trail.
fn command_line() -> ClientInfo {
    ClientInfo {
        ip: None,
        user_agent: Some("authgate-cli".into()),
    }
}

/// The password on standard input: everything up to its end (a pipe, a file), or the line
/// typed at a terminal; less the line break after it.
fn read_password(email: &str) -> Result<String, String> {
    let mut stdin = std::io::stdin();
    let mut input = String::new();
    let read = if stdin.is_terminal() {
        // No dependency here can hide what is typed: a script should pipe the password in.
        eprint!("password for {email} (shown as typed; pipe it in to keep it off the screen): ");
        stdin.read_line(&mut input)
    } else {
        stdin.read_to_string(&mut input)
    };
    read.map_err(|err| format!("cannot read the password from standard input: {err}"))?;
    let password = input
        .strip_suffix('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .unwrap_or(&input);
    if password.is_empty() {
        return Err("no password on standard input (pipe one in, or use --invite)".into());
    }
    Ok(password.to_string())
}

/// Every account (holding `role`, when given), page by page.
async fn every_account(state: &AppState, role: Option<String>) -> Result<Vec<Account>, String> {
    let mut accounts = Vec::new();
    let mut cursor = None;
    loop {
        let query = UserListQuery {
            role: role.clone(),
            limit: Some(MAX_LIMIT.to_string()),
            cursor,
            ..Default::default()
        };
        let page = state.admin_users.list(&query).await.map_err(describe)?;
        accounts.extend(page.users);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(accounts),
        }
    }
}

fn print_table(accounts: &[Account]) {
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|account| {
            vec![
                account.id.to_string(),
                account.email.clone(),
                account.role.clone(),
                account.status.as_str().to_string(),
                account.is_verified.to_string(),
                account.created_at.to_rfc3339(),
            ]
        })
        .collect();
    super::print_table(
        &["id", "email", "role", "status", "verified", "created"],
        &rows,
    );
}

/// The API's answer for `err`, in a line (and a line per field problem).
fn describe(err: AuthError) -> String {
    let err = ApiError::from(err);
    let body = err.body();
    let mut text = format!("{} ({})", body.message, body.error);
    for (field, problems) in body.fields.iter().flatten() {
        text.push_str(&format!("\n  {field}: {}", problems.join(" ")));
    }
    text
}
