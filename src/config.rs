//! Typed configuration, read once from the environment and validated before anything starts.
//!
//! `Config` is a clap `Args` struct: each field carries its variable, its default and, in its
//! doc comment, the help text, so `authgate serve --help` and the code cannot disagree. A bad
//! value stops start-up with a message naming the variable, so the service never runs
//! half-configured.
//!
//! Fields typed `std::option::Option` or `std::vec::Vec` are spelled out on purpose: clap's
//! derive treats a bare `Option`/`Vec` as "optional" or "repeatable", whereas here one value
//! parses into the whole type (`off` → `None`, a comma list → a `Vec`).

use std::{
    fmt,
    net::{IpAddr, SocketAddr, ToSocketAddrs},
    ops::RangeInclusive,
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use clap::{
    Arg, Args, Command, FromArgMatches, ValueEnum,
    error::{ContextKind, ContextValue, ErrorKind},
};
use ipnet::IpNet;
use lettre::message::Mailbox;

/// A value that must never reach a log line or a response: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the service reads from its environment (contract §1, §8–§12).
///
/// `hide_env_values` marks a secret: clap keeps its value out of `--help`, and
/// `ConfigError::from_clap` keeps it out of error messages.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to bind, HOST:PORT; a host name is resolved
    #[arg(long, env = "AUTHGATE_LISTEN", default_value = "127.0.0.1:8080",
          value_parser = socket_address)]
    pub listen: SocketAddr,
    /// sqlite://… or postgres://… (may carry a password, so its value is never shown)
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/authgate.db?mode=rwc",
          hide_env_values = true, value_parser = database_url)]
    pub database_url: Secret<String>,
    /// The iss claim and the base of links
    #[arg(long, env = "AUTHGATE_PUBLIC_URL", default_value = "http://127.0.0.1:8080",
          value_parser = http_url)]
    pub public_url: String,
    /// The aud claim
    #[arg(long, env = "AUTHGATE_AUDIENCE", default_value = "authgate", value_parser = non_empty)]
    pub audience: String,
    /// log (development only: it shows the codes), file://DIR, smtp://host:port,
    /// smtp+starttls://user:pass@host:587 or smtps://user:pass@host:465
    #[arg(long, env = "AUTHGATE_MAIL", default_value = "log", hide_env_values = true,
          value_parser = mail_transport)]
    pub mail: MailTransport,
    /// Sender of every mail
    #[arg(long, env = "AUTHGATE_MAIL_FROM", default_value = "authgate <no-reply@localhost>",
          value_parser = mailbox)]
    pub mail_from: Mailbox,
    /// Access token lifetime
    #[arg(long, env = "AUTHGATE_ACCESS_TTL", default_value = "5m",
          value_parser = positive_duration)]
    pub access_ttl: Duration,
    /// Refresh token lifetime; each rotation starts a fresh lifetime
    #[arg(long, env = "AUTHGATE_REFRESH_TTL", default_value = "24h",
          value_parser = positive_duration)]
    pub refresh_ttl: Duration,
    /// Absolute limit of a session however often it is refreshed
    #[arg(long, env = "AUTHGATE_SESSION_MAX_AGE", default_value = "30d",
          value_parser = positive_duration)]
    pub session_max_age: Duration,
    /// How long an already-rotated refresh token is still honoured, for apps that refresh
    /// from several threads at once
    #[arg(long, env = "AUTHGATE_REFRESH_REUSE_INTERVAL", default_value = "10s",
          value_parser = duration)]
    pub refresh_reuse_interval: Duration,
    /// Signing algorithm: EdDSA (Ed25519), ES256 or RS256
    #[arg(long, env = "AUTHGATE_JWT_ALG", default_value = "EdDSA",
          value_parser = str::parse::<SigningAlgorithm>)]
    pub jwt_algorithm: SigningAlgorithm,
    /// Rotate the signing key automatically this often, or off
    #[arg(long, env = "AUTHGATE_KEY_ROTATION", default_value = "off",
          value_parser = or_off(positive_duration))]
    pub key_rotation: std::option::Option<Duration>,
    /// One-time code lifetime
    #[arg(long, env = "AUTHGATE_OTP_TTL", default_value = "10m", value_parser = positive_duration)]
    pub otp_ttl: Duration,
    /// Wrong guesses before a code is burned (1 to 1000)
    #[arg(long, env = "AUTHGATE_OTP_MAX_ATTEMPTS", default_value = "5",
          value_parser = |value: &str| whole_number(value, 1..=1000u32))]
    pub otp_max_attempts: u32,
    /// Minimum gap between two codes of one purpose mailed to one address
    #[arg(long, env = "AUTHGATE_OTP_RESEND_COOLDOWN", default_value = "60s",
          value_parser = duration)]
    pub otp_resend_cooldown: Duration,
    /// argon2id memory (KiB), iterations, lanes; the default is OWASP's recommendation
    #[arg(long, env = "AUTHGATE_ARGON2", default_value = "m=19456,t=2,p=1",
          value_parser = str::parse::<Argon2Params>)]
    pub argon2: Argon2Params,
    /// Minimum password length in characters (1 to 1024)
    #[arg(long, env = "AUTHGATE_PASSWORD_MIN_LENGTH", default_value = "8",
          value_parser = |value: &str| whole_number(value, 1..=1024usize))]
    pub password_min_length: usize,
    /// Comma list of email domains that may register, subdomains included; empty admits any
    #[arg(long, env = "AUTHGATE_ALLOWED_EMAIL_DOMAINS", default_value = "",
          value_parser = email_domains)]
    pub allowed_email_domains: std::vec::Vec<String>,
    /// Comma list of roles a registrant may pick; the first is the default; never admin
    #[arg(long, env = "AUTHGATE_SELF_ASSIGNABLE_ROLES", default_value = "user",
          value_parser = self_assignable_roles)]
    pub self_assignable_roles: std::vec::Vec<String>,
    /// Log format; the level comes from RUST_LOG
    #[arg(
        long,
        env = "AUTHGATE_LOG_FORMAT",
        default_value = "pretty",
        value_enum
    )]
    pub log_format: LogFormat,
    /// Comma list of addresses or CIDR ranges of proxies whose X-Forwarded-For is believed
    #[arg(long, env = "AUTHGATE_TRUSTED_PROXIES", default_value = "",
          value_parser = trusted_proxies)]
    pub trusted_proxies: std::vec::Vec<IpNet>,
    /// Comma list of origins allowed to call the API from a browser; empty turns CORS off
    #[arg(long, env = "AUTHGATE_CORS_ORIGINS", default_value = "", value_parser = origins)]
    pub cors_origins: std::vec::Vec<String>,
    /// How long requests in flight may finish after SIGTERM or SIGINT
    #[arg(long, env = "AUTHGATE_SHUTDOWN_GRACE", default_value = "30s", value_parser = duration)]
    pub shutdown_grace: Duration,
    /// Address of the Prometheus metrics listener, never the public port; or off
    #[arg(long, env = "AUTHGATE_METRICS_LISTEN", default_value = "127.0.0.1:9464",
          value_parser = or_off(socket_address))]
    pub metrics_listen: std::option::Option<SocketAddr>,
    /// Comma list of every role an account may hold; must contain admin and every
    /// self-assignable role
    #[arg(long, env = "AUTHGATE_ROLES", default_value = "user,admin", value_parser = roles)]
    pub roles: std::vec::Vec<String>,
    /// Whether accounts have a public username
    #[arg(
        long,
        env = "AUTHGATE_USERNAMES",
        default_value = "optional",
        value_enum
    )]
    pub usernames: Usernames,
    /// Path to a JSON Schema (draft 2020-12) that a user's metadata must satisfy; empty for none
    #[arg(long, env = "AUTHGATE_PROFILE_SCHEMA", default_value = "", value_parser = optional_path)]
    pub profile_schema: std::option::Option<PathBuf>,
    /// Time between a deletion request and the purge; 0s purges at once
    #[arg(long, env = "AUTHGATE_DELETION_GRACE", default_value = "7d", value_parser = duration)]
    pub deletion_grace: Duration,
    /// Largest picture upload, written like 512KiB or 5MiB
    #[arg(long, env = "AUTHGATE_AVATAR_MAX_BYTES", default_value = "5MiB", value_parser = size)]
    pub avatar_max_bytes: usize,
    /// Comma list of second factors users may turn on (totp, email), or off
    #[arg(long, env = "AUTHGATE_MFA_METHODS", default_value = "totp,email",
          value_parser = mfa_methods)]
    pub mfa_methods: std::vec::Vec<MfaMethod>,
    /// Comma list of roles whose /admin calls need a token that passed a second factor
    #[arg(long, env = "AUTHGATE_MFA_REQUIRED_ROLES", default_value = "", value_parser = role_list)]
    pub mfa_required_roles: std::vec::Vec<String>,
    /// How long a login may wait for its second factor
    #[arg(long, env = "AUTHGATE_MFA_TOKEN_TTL", default_value = "5m",
          value_parser = positive_duration)]
    pub mfa_token_ttl: Duration,
    /// How long "remember this device" lasts
    #[arg(long, env = "AUTHGATE_TRUSTED_DEVICE_TTL", default_value = "30d",
          value_parser = positive_duration)]
    pub trusted_device_ttl: Duration,
    /// Comma list of id:base64-of-32-bytes; the first encrypts, every one decrypts
    // Kept raw: the module that encrypts parses it and names a bad key by its id.
    #[arg(long, env = "AUTHGATE_ENCRYPTION_KEYS", default_value = "", hide_env_values = true,
          value_parser = secret)]
    pub encryption_keys: Secret<String>,
    // Last: clap puts every argument after a heading under it.
    #[command(flatten, next_help_heading = "Abuse limits (COUNT/WINDOW, or off)")]
    pub limits: Limits,
}

/// A limit of `count` events per `window`; `None` where the variable says `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub window: Duration,
}

impl FromStr for Limit {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || "expected COUNT/WINDOW like 30/5m, or off".to_string();
        let (count, window) = value.split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        let window = positive_duration(window.trim())?;
        if count == 0 {
            return Err("the count must be at least 1 (use off to disable)".into());
        }
        Ok(Limit { count, window })
    }
}

/// Abuse limits (§8), each shared by every instance on the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct Limits {
    /// Login attempts from one client IP
    #[arg(long = "limit-login-ip", env = "AUTHGATE_LIMIT_LOGIN_IP", default_value = "30/5m",
          value_parser = or_off(str::parse::<Limit>))]
    pub login_ip: std::option::Option<Limit>,
    /// Failed logins for one email; past it the account's logins are refused for the window
    #[arg(long = "limit-login-account", env = "AUTHGATE_LIMIT_LOGIN_ACCOUNT",
          default_value = "10/15m", value_parser = or_off(str::parse::<Limit>))]
    pub login_account: std::option::Option<Limit>,
    /// Registrations from one client IP
    #[arg(long = "limit-register-ip", env = "AUTHGATE_LIMIT_REGISTER_IP",
          default_value = "10/1h", value_parser = or_off(str::parse::<Limit>))]
    pub register_ip: std::option::Option<Limit>,
    /// Code checks from one client IP
    #[arg(long = "limit-otp-verify-ip", env = "AUTHGATE_LIMIT_OTP_VERIFY_IP",
          default_value = "30/5m", value_parser = or_off(str::parse::<Limit>))]
    pub otp_verify_ip: std::option::Option<Limit>,
    /// Codes mailed to one address, besides the per-code cooldown
    #[arg(long = "limit-mail-address", env = "AUTHGATE_LIMIT_MAIL_ADDRESS",
          default_value = "5/1h", value_parser = or_off(str::parse::<Limit>))]
    pub mail_address: std::option::Option<Limit>,
    /// Refreshes of one session
    #[arg(long = "limit-refresh-session", env = "AUTHGATE_LIMIT_REFRESH_SESSION",
          default_value = "60/1m", value_parser = or_off(str::parse::<Limit>))]
    pub refresh_session: std::option::Option<Limit>,
    /// Username availability look-ups from one client IP
    #[arg(long = "limit-lookup-ip", env = "AUTHGATE_LIMIT_LOOKUP_IP", default_value = "60/1m",
          value_parser = or_off(str::parse::<Limit>))]
    pub lookup_ip: std::option::Option<Limit>,
}

impl Limits {
    /// Every limit off, for tests that are not about limits.
    pub const OFF: Limits = Limits {
        login_ip: None,
        login_account: None,
        register_ip: None,
        otp_verify_ip: None,
        mail_address: None,
        refresh_session: None,
        lookup_ip: None,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// Print every mail to the log: for development only, since it shows the codes.
    Log,
    /// Write one `.eml` file per mail into a directory.
    File(PathBuf),
    /// Hand mail to an SMTP server.
    Smtp(SmtpSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<(String, Secret<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no TLS, for relays on the local network.
    Plain,
    /// `smtp+starttls://`: upgrade with STARTTLS, which must succeed.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    EdDsa,
    Es256,
    Rs256,
}

impl SigningAlgorithm {
    /// The name used in JWT headers and JWKs.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::EdDsa => "EdDSA",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::Rs256 => "RS256",
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "EdDSA" => Ok(SigningAlgorithm::EdDsa),
            "ES256" => Ok(SigningAlgorithm::Es256),
            "RS256" => Ok(SigningAlgorithm::Rs256),
            _ => Err("expected EdDSA, ES256 or RS256".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl Argon2Params {
    /// Cheap parameters for tests whose subject is not hashing.
    pub const FOR_TESTS: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };
}

impl FromStr for Argon2Params {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (mut memory_kib, mut iterations, mut lanes) = (None, None, None);
        for part in value.split(',') {
            let (key, number) = part
                .trim()
                .split_once('=')
                .ok_or("expected m=KIB,t=ITERATIONS,p=LANES")?;
            let number: u32 = number
                .parse()
                .map_err(|_| format!("{key} must be a whole number"))?;
            match key {
                "m" => memory_kib = Some(number),
                "t" => iterations = Some(number),
                "p" => lanes = Some(number),
                _ => return Err(format!("unknown parameter {key}; expected m, t and p")),
            }
        }
        let params = Argon2Params {
            memory_kib: memory_kib.ok_or("m (memory in KiB) is missing")?,
            iterations: iterations.ok_or("t (iterations) is missing")?,
            lanes: lanes.ok_or("p (lanes) is missing")?,
        };
        argon2::Params::new(params.memory_kib, params.iterations, params.lanes, None)
            .map_err(|err| format!("argon2 rejects these parameters: {err}"))?;
        Ok(params)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    Pretty,
    /// One JSON object per line
    Json,
}

/// Whether accounts have a public username (§10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Usernames {
    /// A user may set one
    Optional,
    /// Registration needs one
    Required,
    /// The field is refused
    Off,
}

/// A second factor users may turn on (§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MfaMethod {
    /// An authenticator app (RFC 6238).
    Totp,
    /// A code mailed to the account's address.
    Email,
}

/// A configuration variable with a value the service cannot run with.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}={value:?}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub value: String,
    pub problem: String,
}

impl ConfigError {
    /// The variable behind a value clap rejected, found among `command`'s arguments and its
    /// subcommands', so the message names what an operator sets rather than a flag they never
    /// typed. `None` for errors about the command line itself (an unknown command, `--help`).
    pub(crate) fn from_clap(err: &clap::Error, mut command: Command) -> Option<ConfigError> {
        if !matches!(
            err.kind(),
            ErrorKind::ValueValidation | ErrorKind::InvalidValue
        ) {
            return None;
        }
        let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
            return None;
        };
        // Arguments show themselves as clap's error does only once their command is built.
        command.build();
        let arg = find_arg(&command, shown)?;
        let value = match err.get(ContextKind::InvalidValue) {
            // Secrets are marked once, for `--help`; errors honour the same mark.
            _ if arg.is_hide_env_values_set() => "[redacted]".to_string(),
            Some(ContextValue::String(value)) => value.clone(),
            _ => String::new(),
        };
        let problem = match (
            std::error::Error::source(err),
            err.get(ContextKind::ValidValue),
        ) {
            (Some(source), _) => source.to_string(),
            (None, Some(ContextValue::Strings(valid))) => {
                format!("expected one of {}", valid.join(", "))
            }
            (None, _) => "not an accepted value".to_string(),
        };
        Some(ConfigError {
            variable: arg.get_env()?.to_string_lossy().into_owned(),
            value,
            problem,
        })
    }
}

/// The argument clap shows as `shown` (`--access-ttl <ACCESS_TTL>`), at any depth.
fn find_arg<'a>(command: &'a Command, shown: &str) -> Option<&'a Arg> {
    command
        .get_arguments()
        .find(|arg| arg.to_string() == shown)
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| find_arg(sub, shown))
        })
}

/// Loads `.env` into the process environment, if there is one, before the command line is
/// parsed. A missing file is normal; a malformed one would leave every variable after the bad
/// line at its default, so the caller stops start-up with this error.
pub(crate) fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::dotenv() {
        Err(err) if !err.not_found() => Err(ConfigError {
            variable: ".env".into(),
            value: "[file]".into(),
            problem: err.to_string(),
        }),
        _ => Ok(()),
    }
}

impl Config {
    /// Builds the configuration from any source of variables, never the process environment;
    /// tests pass a map. Each variable the lookup knows becomes `--flag=value` for clap, so
    /// values are parsed and checked exactly as at start-up.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let command = Config::augment_args(Command::new("authgate").no_binary_name(true));
        let args: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| {
                let value = lookup(arg.get_env()?.to_str()?)?;
                Some(format!("--{}={value}", arg.get_long()?))
            })
            .collect();
        let config = command
            .clone()
            // Whatever the machine running the tests has set must not leak in.
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(args)
            .and_then(|matches| Config::from_arg_matches(&matches))
            .map_err(|err| {
                ConfigError::from_clap(&err, command.clone()).unwrap_or_else(|| ConfigError {
                    variable: "configuration".into(),
                    value: String::new(),
                    problem: err.to_string(),
                })
            })?;
        config.validate()?;
        Ok(config)
    }

    /// The checks that need two variables at once; clap has judged each value on its own.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let undeclared = |roles: &[String]| -> Vec<String> {
            roles
                .iter()
                .filter(|role| !self.roles.contains(role))
                .cloned()
                .collect()
        };
        let missing =
            undeclared(&[&["admin".to_string()], &self.self_assignable_roles[..]].concat());
        if !missing.is_empty() {
            return Err(ConfigError {
                variable: "AUTHGATE_ROLES".into(),
                value: self.roles.join(","),
                problem: format!(
                    "must contain admin and every role of AUTHGATE_SELF_ASSIGNABLE_ROLES; \
                     missing {}",
                    missing.join(", ")
                ),
            });
        }
        let missing = undeclared(&self.mfa_required_roles);
        if !missing.is_empty() {
            return Err(ConfigError {
                variable: "AUTHGATE_MFA_REQUIRED_ROLES".into(),
                value: self.mfa_required_roles.join(","),
                problem: format!("{} not among AUTHGATE_ROLES", missing.join(", ")),
            });
        }
        Ok(())
    }

    /// The role a registrant gets when they do not pick one.
    pub fn default_role(&self) -> &str {
        &self.self_assignable_roles[0]
    }
}

/// `off`, or a value `parse` accepts.
fn or_off<T: 'static>(
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<Option<T>, String> + Clone + Send + Sync + 'static {
    move |value| match value {
        "off" => Ok(None),
        _ => parse(value).map(Some),
    }
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(value.to_string())
    }
}

fn secret(value: &str) -> Result<Secret<String>, String> {
    Ok(Secret::new(value.to_string()))
}

fn comma_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn whole_number<T: FromStr + PartialOrd + fmt::Display>(
    value: &str,
    range: RangeInclusive<T>,
) -> Result<T, String> {
    match value.parse() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(format!(
            "expected a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// `HOST:PORT`, the host an address or a name resolved now (the first address it gives).
fn socket_address(value: &str) -> Result<SocketAddr, String> {
    value
        .to_socket_addrs()
        .map_err(|err| format!("expected HOST:PORT with a host that resolves ({err})"))?
        .next()
        .ok_or_else(|| "the host resolves to no address".to_string())
}

fn database_url(value: &str) -> Result<Secret<String>, String> {
    if ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| value.starts_with(scheme))
    {
        Ok(Secret::new(value.to_string()))
    } else {
        Err("expected a sqlite:// or postgres:// URL".into())
    }
}

/// An http(s) URL or origin with a host, without a trailing slash.
fn http_url(value: &str) -> Result<String, String> {
    let expected = || "expected an http:// or https:// URL with a host".to_string();
    let parsed = url::Url::parse(value).map_err(|_| expected())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(expected());
    }
    Ok(value.trim_end_matches('/').to_string())
}

fn mailbox(value: &str) -> Result<Mailbox, String> {
    value
        .parse()
        .map_err(|_| "expected an address like `Name <user@host>`".into())
}

/// Domain names (a leading `@` is dropped): labels of letters, digits and hyphens joined by
/// dots. A wildcard or a typo would otherwise refuse every address, silently.
fn email_domains(value: &str) -> Result<Vec<String>, String> {
    comma_list(value)
        .map(|domain| {
            let domain = domain.trim_start_matches('@').to_lowercase();
            if domain.split('.').all(is_domain_label) {
                Ok(domain)
            } else {
                Err(format!("`{domain}` is not a domain name like example.com"))
            }
        })
        .collect()
}

fn is_domain_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn role_list(value: &str) -> Result<Vec<String>, String> {
    Ok(comma_list(value).map(str::to_string).collect())
}

fn roles(value: &str) -> Result<Vec<String>, String> {
    match role_list(value)? {
        roles if roles.is_empty() => Err("at least one role is needed".into()),
        roles => Ok(roles),
    }
}

fn self_assignable_roles(value: &str) -> Result<Vec<String>, String> {
    let roles = roles(value)?;
    if roles.iter().any(|role| role.eq_ignore_ascii_case("admin")) {
        return Err("admin is never self-assignable".into());
    }
    Ok(roles)
}

fn trusted_proxies(value: &str) -> Result<Vec<IpNet>, String> {
    comma_list(value)
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item} is not an address or CIDR range"))
        })
        .collect()
}

fn origins(value: &str) -> Result<Vec<String>, String> {
    comma_list(value)
        .map(|origin| {
            http_url(origin)
                .map_err(|_| format!("{origin} is not an origin like https://app.example.com"))
        })
        .collect()
}

fn optional_path(value: &str) -> Result<Option<PathBuf>, String> {
    Ok((!value.is_empty()).then(|| PathBuf::from(value)))
}

fn mfa_methods(value: &str) -> Result<Vec<MfaMethod>, String> {
    let invalid = || "expected a comma list of totp and email, or off".to_string();
    if value == "off" {
        return Ok(Vec::new());
    }
    let methods = comma_list(value)
        .map(|method| <MfaMethod as ValueEnum>::from_str(method, false).map_err(|_| invalid()))
        .collect::<Result<Vec<_>, _>>()?;
    if methods.is_empty() {
        return Err(invalid());
    }
    Ok(methods)
}

/// Durations are written like `90s`, `10m`, `24h` or `7d` (humantime's syntax).
fn duration(value: &str) -> Result<Duration, String> {
    // Ten years is longer than any lifetime or window makes sense for, and keeps every
    // "now + duration" far from overflowing.
    const MAX: Duration = Duration::from_secs(3650 * 86_400);
    match humantime::parse_duration(value) {
        Ok(duration) if duration > MAX => Err("at most 3650d".into()),
        // Lifetimes and windows are counted in whole seconds (JWT times are seconds).
        Ok(duration) if duration.subsec_nanos() != 0 => Err("expected whole seconds".into()),
        Ok(duration) => Ok(duration),
        Err(_) => Err("expected a duration like 90s, 10m, 24h or 7d".into()),
    }
}

fn positive_duration(value: &str) -> Result<Duration, String> {
    match duration(value)? {
        Duration::ZERO => Err("must be longer than zero".into()),
        duration => Ok(duration),
    }
}

/// Sizes are written like `512KiB` or `5MiB` (bytesize's syntax).
fn size(value: &str) -> Result<usize, String> {
    // Uploads are held in memory whole; past a gibibyte is a typo, not a picture.
    const MAX: u64 = 1 << 30;
    match value.parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() == 0 => Err("must be larger than zero".into()),
        Ok(size) if size.as_u64() <= MAX => {
            usize::try_from(size.as_u64()).map_err(|_| "too large for this machine".into())
        }
        Ok(_) => Err("at most 1GiB".into()),
        Err(_) => Err("expected a size like 512KiB or 5MiB".into()),
    }
}

fn mail_transport(value: &str) -> Result<MailTransport, String> {
    if value == "log" {
        return Ok(MailTransport::Log);
    }
    if let Some(directory) = value.strip_prefix("file://") {
        return non_empty(directory).map(|dir| MailTransport::File(PathBuf::from(dir)));
    }
    let expected = "expected log, file://DIR, smtp://, smtp+starttls:// or smtps://";
    let (scheme, rest) = value.split_once("://").ok_or(expected)?;
    let (security, default_port) = match scheme {
        "smtp" => (SmtpSecurity::Plain, 25),
        "smtp+starttls" => (SmtpSecurity::StartTls, 587),
        "smtps" => (SmtpSecurity::Tls, 465),
        _ => return Err(expected.into()),
    };
    let rest = rest.trim_end_matches('/');
    let (credentials, host_port) = match rest.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let credentials = (
                percent_decode(user)?,
                Secret::new(percent_decode(password)?),
            );
            (Some(credentials), host_port)
        }
        None => (None, rest),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| "the port must be a number")?),
        None => (host_port, default_port),
    };
    Ok(MailTransport::Smtp(SmtpSettings {
        host: non_empty(host).map_err(|_| "the host is missing")?,
        port,
        security,
        credentials,
    }))
}

/// Credentials in a URL may be percent-encoded (`p%40ss` for `p@ss`).
fn percent_decode(value: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(String::from)
        .map_err(|_| "the credentials are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    fn limit(count: u32, seconds: u64) -> Option<Limit> {
        Some(Limit {
            count,
            window: Duration::from_secs(seconds),
        })
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = config_with(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database_url.expose(),
            "sqlite://data/authgate.db?mode=rwc"
        );
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.audience, "authgate");
        assert_eq!(config.mail, MailTransport::Log);
        assert_eq!(
            config.mail_from.to_string(),
            "authgate <no-reply@localhost>"
        );
        assert_eq!(config.access_ttl, Duration::from_secs(300));
        assert_eq!(config.refresh_ttl, Duration::from_secs(86_400));
        assert_eq!(config.session_max_age, Duration::from_secs(30 * 86_400));
        assert_eq!(config.refresh_reuse_interval, Duration::from_secs(10));
        assert_eq!(config.jwt_algorithm, SigningAlgorithm::EdDsa);
        assert_eq!(config.key_rotation, None);
        assert_eq!(config.otp_ttl, Duration::from_secs(600));
        assert_eq!(config.otp_max_attempts, 5);
        assert_eq!(config.otp_resend_cooldown, Duration::from_secs(60));
        assert_eq!(
            config.argon2,
            Argon2Params {
                memory_kib: 19456,
                iterations: 2,
                lanes: 1
            }
        );
        assert_eq!(config.password_min_length, 8);
        assert!(config.allowed_email_domains.is_empty());
        assert_eq!(config.self_assignable_roles, vec!["user"]);
        assert_eq!(config.default_role(), "user");
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(
            config.limits,
            Limits {
                login_ip: limit(30, 300),
                login_account: limit(10, 900),
                register_ip: limit(10, 3600),
                otp_verify_ip: limit(30, 300),
                mail_address: limit(5, 3600),
                refresh_session: limit(60, 60),
                lookup_ip: limit(60, 60),
            }
        );
        assert!(config.trusted_proxies.is_empty());
        assert!(config.cors_origins.is_empty());
        assert_eq!(config.shutdown_grace, Duration::from_secs(30));
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(config.roles, vec!["user", "admin"]);
        assert_eq!(config.usernames, Usernames::Optional);
        assert_eq!(config.profile_schema, None);
        assert_eq!(config.deletion_grace, Duration::from_secs(7 * 86_400));
        assert_eq!(config.avatar_max_bytes, 5 * 1024 * 1024);
        assert_eq!(config.mfa_methods, vec![MfaMethod::Totp, MfaMethod::Email]);
        assert!(config.mfa_required_roles.is_empty());
        assert_eq!(config.mfa_token_ttl, Duration::from_secs(300));
        assert_eq!(config.trusted_device_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(config.encryption_keys.expose(), "");
    }

    #[test]
    fn off_and_empty_values_switch_features_off() {
        let config = config_with(&[
            ("AUTHGATE_KEY_ROTATION", "off"),
            ("AUTHGATE_METRICS_LISTEN", "off"),
            ("AUTHGATE_MFA_METHODS", "off"),
            ("AUTHGATE_LIMIT_LOOKUP_IP", "off"),
            ("AUTHGATE_PROFILE_SCHEMA", ""),
            ("AUTHGATE_USERNAMES", "off"),
            ("AUTHGATE_DELETION_GRACE", "0s"),
        ])
        .unwrap();
        assert_eq!(config.key_rotation, None);
        assert_eq!(config.metrics_listen, None);
        assert!(config.mfa_methods.is_empty());
        assert_eq!(config.limits.lookup_ip, None);
        assert_eq!(config.profile_schema, None);
        assert_eq!(config.usernames, Usernames::Off);
        assert_eq!(config.deletion_grace, Duration::ZERO);
    }

    #[test]
    fn the_later_features_take_their_values() {
        let config = config_with(&[
            ("AUTHGATE_KEY_ROTATION", "30d"),
            ("AUTHGATE_USERNAMES", "required"),
            ("AUTHGATE_PROFILE_SCHEMA", "schemas/profile.json"),
            ("AUTHGATE_MFA_METHODS", "email"),
            ("AUTHGATE_ROLES", "user, admin, ops"),
            ("AUTHGATE_MFA_REQUIRED_ROLES", "admin,ops"),
            ("AUTHGATE_MFA_TOKEN_TTL", "90s"),
            ("AUTHGATE_TRUSTED_DEVICE_TTL", "7d"),
            ("AUTHGATE_ENCRYPTION_KEYS", "k1:c2VjcmV0"),
        ])
        .unwrap();
        assert_eq!(config.key_rotation, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(config.usernames, Usernames::Required);
        assert_eq!(
            config.profile_schema,
            Some(PathBuf::from("schemas/profile.json"))
        );
        assert_eq!(config.mfa_methods, vec![MfaMethod::Email]);
        assert_eq!(config.roles, vec!["user", "admin", "ops"]);
        assert_eq!(config.mfa_required_roles, vec!["admin", "ops"]);
        assert_eq!(config.mfa_token_ttl, Duration::from_secs(90));
        assert_eq!(config.trusted_device_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(config.encryption_keys.expose(), "k1:c2VjcmV0");
    }

    #[test]
    fn roles_must_contain_admin_and_every_self_assignable_role() {
        let error = config_with(&[("AUTHGATE_ROLES", "user")]).unwrap_err();
        assert_eq!(error.variable, "AUTHGATE_ROLES");
        assert!(error.problem.contains("admin"), "{error}");

        let error = config_with(&[("AUTHGATE_SELF_ASSIGNABLE_ROLES", "user,student")]).unwrap_err();
        assert_eq!(error.variable, "AUTHGATE_ROLES");
        assert!(
            error.to_string().contains("AUTHGATE_SELF_ASSIGNABLE_ROLES")
                && error.problem.contains("student"),
            "{error}"
        );

        let error = config_with(&[("AUTHGATE_MFA_REQUIRED_ROLES", "ops")]).unwrap_err();
        assert_eq!(error.variable, "AUTHGATE_MFA_REQUIRED_ROLES");
        assert!(error.to_string().contains("AUTHGATE_ROLES"), "{error}");

        let config = config_with(&[
            ("AUTHGATE_SELF_ASSIGNABLE_ROLES", "student,teacher"),
            ("AUTHGATE_ROLES", "student,teacher,admin"),
        ])
        .unwrap();
        assert_eq!(config.default_role(), "student");
    }

    #[test]
    fn limits_proxies_and_origins_parse() {
        let config = config_with(&[
            ("AUTHGATE_LIMIT_LOGIN_IP", "off"),
            ("AUTHGATE_LIMIT_MAIL_ADDRESS", "3/10m"),
            ("AUTHGATE_LIMIT_LOOKUP_IP", "100/1h"),
            ("AUTHGATE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7"),
            (
                "AUTHGATE_CORS_ORIGINS",
                "https://app.example.com/,http://localhost:3000",
            ),
        ])
        .unwrap();
        assert_eq!(config.limits.login_ip, None);
        assert_eq!(config.limits.mail_address, limit(3, 600));
        assert_eq!(config.limits.lookup_ip, limit(100, 3600));
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(config.trusted_proxies[1].contains(&"192.168.1.7".parse::<IpAddr>().unwrap()));
        assert_eq!(
            config.cors_origins,
            vec!["https://app.example.com", "http://localhost:3000"]
        );
        for (variable, value) in [
            ("AUTHGATE_LIMIT_LOGIN_IP", "30"),
            ("AUTHGATE_LIMIT_LOGIN_IP", "0/5m"),
            ("AUTHGATE_LIMIT_LOGIN_IP", "x/5m"),
            ("AUTHGATE_LIMIT_LOOKUP_IP", "60/0s"),
            ("AUTHGATE_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("AUTHGATE_CORS_ORIGINS", "*"),
            ("AUTHGATE_SHUTDOWN_GRACE", "soon"),
        ] {
            assert_eq!(
                config_with(&[(variable, value)]).unwrap_err().variable,
                variable
            );
        }
    }

    #[test]
    fn durations_take_every_unit_up_to_ten_years() {
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(duration("3650d"), Ok(Duration::from_secs(3650 * 86_400)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert_eq!(duration("3651d"), Err("at most 3650d".to_string()));
        assert_eq!(duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(positive_duration("0s").is_err());
        for bad in [
            "",
            "s",
            "10",
            "10x",
            "-5m",
            "500ms",
            "1.5s",
            "99999999999999999999d",
        ] {
            assert!(duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn sizes_are_written_with_units() {
        assert_eq!(size("512KiB"), Ok(512 * 1024));
        assert_eq!(size("5MiB"), Ok(5 * 1024 * 1024));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        let config = config_with(&[("AUTHGATE_AVATAR_MAX_BYTES", "512KiB")]).unwrap();
        assert_eq!(config.avatar_max_bytes, 512 * 1024);
        for bad in ["", "0", "0MiB", "five", "2GiB", "5 parsecs"] {
            let error = config_with(&[("AUTHGATE_AVATAR_MAX_BYTES", bad)]).unwrap_err();
            assert_eq!(error.variable, "AUTHGATE_AVATAR_MAX_BYTES", "{bad}");
        }
    }

    #[test]
    fn a_host_name_is_resolved() {
        let config = config_with(&[
            ("AUTHGATE_LISTEN", "localhost:8080"),
            ("AUTHGATE_METRICS_LISTEN", "localhost:9464"),
        ])
        .unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.metrics_listen.map(|a| a.port()), Some(9464));
        assert_eq!(
            config_with(&[("AUTHGATE_LISTEN", "[::1]:0")])
                .unwrap()
                .listen
                .to_string(),
            "[::1]:0"
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (variable, value) in [
            ("AUTHGATE_ACCESS_TTL", "five minutes"),
            ("AUTHGATE_ACCESS_TTL", "0s"),
            ("AUTHGATE_LISTEN", "nowhere"),
            ("AUTHGATE_LISTEN", "localhost"),
            ("AUTHGATE_METRICS_LISTEN", "on"),
            ("AUTHGATE_PUBLIC_URL", "example.com"),
            ("AUTHGATE_PUBLIC_URL", "http://"),
            ("AUTHGATE_PUBLIC_URL", "http://auth example.com"),
            ("AUTHGATE_ALLOWED_EMAIL_DOMAINS", "*.ucla.edu"),
            ("AUTHGATE_ALLOWED_EMAIL_DOMAINS", "ucla.edu,not a domain"),
            ("AUTHGATE_AUDIENCE", ""),
            ("AUTHGATE_MAIL_FROM", "nobody"),
            ("AUTHGATE_JWT_ALG", "HS256"),
            ("AUTHGATE_KEY_ROTATION", "0s"),
            ("AUTHGATE_ARGON2", "m=1,t=1,p=1"),
            ("AUTHGATE_OTP_MAX_ATTEMPTS", "0"),
            ("AUTHGATE_PASSWORD_MIN_LENGTH", "1025"),
            ("AUTHGATE_SELF_ASSIGNABLE_ROLES", "user,admin"),
            ("AUTHGATE_SELF_ASSIGNABLE_ROLES", ""),
            ("AUTHGATE_ROLES", " , "),
            ("AUTHGATE_USERNAMES", "sometimes"),
            ("AUTHGATE_MFA_METHODS", "totp,sms"),
            ("AUTHGATE_MFA_METHODS", ""),
            ("AUTHGATE_MFA_TOKEN_TTL", "0s"),
            ("AUTHGATE_TRUSTED_DEVICE_TTL", "forever"),
            ("AUTHGATE_DELETION_GRACE", "3651d"),
            ("AUTHGATE_MAIL", "carrier-pigeon://coop"),
            ("AUTHGATE_LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://root@localhost/db"),
        ] {
            let error = config_with(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{value}");
            assert!(error.to_string().contains(variable));
        }
        assert_eq!(
            config_with(&[("AUTHGATE_ACCESS_TTL", "five minutes")])
                .unwrap_err()
                .to_string(),
            "invalid AUTHGATE_ACCESS_TTL=\"five minutes\": \
             expected a duration like 90s, 10m, 24h or 7d"
        );
    }

    #[test]
    fn mail_urls_carry_security_and_credentials() {
        let config = config_with(&[(
            "AUTHGATE_MAIL",
            "smtp+starttls://me%40x.org:p%40ss@mail.x.org:2587",
        )])
        .unwrap();
        let MailTransport::Smtp(smtp) = config.mail else {
            panic!("expected SMTP")
        };
        assert_eq!(smtp.host, "mail.x.org");
        assert_eq!(smtp.port, 2587);
        assert_eq!(smtp.security, SmtpSecurity::StartTls);
        let (user, password) = smtp.credentials.unwrap();
        assert_eq!(user, "me@x.org");
        assert_eq!(password.expose(), "p@ss");

        let config = config_with(&[("AUTHGATE_MAIL", "smtps://u:p@mail.x.org")]).unwrap();
        let MailTransport::Smtp(smtp) = config.mail else {
            panic!("expected SMTP")
        };
        assert_eq!((smtp.port, smtp.security), (465, SmtpSecurity::Tls));

        let config = config_with(&[("AUTHGATE_MAIL", "smtp://relay.local")]).unwrap();
        let MailTransport::Smtp(smtp) = config.mail else {
            panic!("expected SMTP")
        };
        assert_eq!((smtp.port, smtp.security), (25, SmtpSecurity::Plain));
        assert_eq!(smtp.credentials, None);

        let config = config_with(&[("AUTHGATE_MAIL", "file:///tmp/mail")]).unwrap();
        assert_eq!(config.mail, MailTransport::File(PathBuf::from("/tmp/mail")));
    }

    #[test]
    fn secrets_do_not_print() {
        let config = config_with(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("AUTHGATE_MAIL", "smtps://u:hunter2@mail.x.org"),
            ("AUTHGATE_ENCRYPTION_KEYS", "k1:hunter2"),
        ])
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        for (variable, value) in [
            ("AUTHGATE_MAIL", "smtps://u:hunter2@"),
            ("DATABASE_URL", "mysql://u:hunter2@db/x"),
        ] {
            let error = config_with(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable);
            assert!(!format!("{error} {error:?}").contains("hunter2"));
        }
    }
}
