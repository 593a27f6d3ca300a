//! Typed configuration, read once from the environment and validated before anything starts.
//!
//! Every field names the variable it comes from and its default. A bad value stops start-up
//! with a message naming the variable, so the service never runs half-configured.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

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

#[derive(Debug, Clone)]
pub struct Config {
    /// `AUTHGATE_LISTEN`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `DATABASE_URL`, default `sqlite://data/authgate.db?mode=rwc`. May carry a password.
    pub database_url: Secret<String>,
    /// `AUTHGATE_PUBLIC_URL`, default `http://127.0.0.1:8080`: the `iss` claim, without a
    /// trailing slash.
    pub public_url: String,
    /// `AUTHGATE_AUDIENCE`, default `authgate`: the `aud` claim.
    pub audience: String,
    /// `AUTHGATE_MAIL`, default `log`.
    pub mail: MailTransport,
    /// `AUTHGATE_MAIL_FROM`, default `authgate <no-reply@localhost>`.
    pub mail_from: Mailbox,
    /// `AUTHGATE_ACCESS_TTL`, default `5m`.
    pub access_ttl: Duration,
    /// `AUTHGATE_REFRESH_TTL`, default `24h`; each rotation starts a fresh lifetime.
    pub refresh_ttl: Duration,
    /// `AUTHGATE_SESSION_MAX_AGE`, default `30d`: absolute limit of a session.
    pub session_max_age: Duration,
    /// `AUTHGATE_REFRESH_REUSE_INTERVAL`, default `10s`: how long an already-rotated refresh
    /// token is still honoured, for apps that refresh from several threads at once.
    pub refresh_reuse_interval: Duration,
    /// `AUTHGATE_JWT_ALG`, default `EdDSA`.
    pub jwt_algorithm: SigningAlgorithm,
    /// `AUTHGATE_KEY_ROTATION`, default `off`.
    pub key_rotation: Option<Duration>,
    /// `AUTHGATE_OTP_TTL`, default `10m`.
    pub otp_ttl: Duration,
    /// `AUTHGATE_OTP_MAX_ATTEMPTS`, default `5`: wrong guesses before a code is burned.
    pub otp_max_attempts: u32,
    /// `AUTHGATE_OTP_RESEND_COOLDOWN`, default `60s`: minimum gap between two codes of one
    /// purpose mailed to one address.
    pub otp_resend_cooldown: Duration,
    /// `AUTHGATE_ARGON2`, default `m=19456,t=2,p=1` (OWASP's argon2id recommendation).
    pub argon2: Argon2Params,
    /// `AUTHGATE_PASSWORD_MIN_LENGTH`, default `8` characters.
    pub password_min_length: usize,
    /// `AUTHGATE_ALLOWED_EMAIL_DOMAINS`, default empty (any domain). Lowercased.
    pub allowed_email_domains: Vec<String>,
    /// `AUTHGATE_SELF_ASSIGNABLE_ROLES`, default `user`; the first is the default role.
    pub self_assignable_roles: Vec<String>,
    /// `AUTHGATE_LOG_FORMAT`, default `pretty`.
    pub log_format: LogFormat,
    /// The `AUTHGATE_LIMIT_*` variables.
    pub limits: Limits,
    /// `AUTHGATE_TRUSTED_PROXIES`, default empty: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `AUTHGATE_CORS_ORIGINS`, default empty (no CORS).
    pub cors_origins: Vec<String>,
    /// `AUTHGATE_SHUTDOWN_GRACE`, default `30s`: how long requests in flight may finish
    /// after SIGTERM or SIGINT.
    pub shutdown_grace: Duration,
    /// `AUTHGATE_ENCRYPTION_KEYS`, default empty.
    pub encryption_keys: Secret<String>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `AUTHGATE_LIMIT_LOGIN_IP`, default `30/5m`: login attempts from one client IP.
    pub login_ip: Option<Limit>,
    /// `AUTHGATE_LIMIT_LOGIN_ACCOUNT`, default `10/15m`: failed logins for one email.
    pub login_account: Option<Limit>,
    /// `AUTHGATE_LIMIT_REGISTER_IP`, default `10/1h`: registrations from one client IP.
    pub register_ip: Option<Limit>,
    /// `AUTHGATE_LIMIT_OTP_VERIFY_IP`, default `30/5m`: code checks from one client IP.
    pub otp_verify_ip: Option<Limit>,
    /// `AUTHGATE_LIMIT_MAIL_ADDRESS`, default `5/1h`: codes mailed to one address.
    pub mail_address: Option<Limit>,
    /// `AUTHGATE_LIMIT_REFRESH_SESSION`, default `60/1m`: refreshes of one session.
    pub refresh_session: Option<Limit>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected pretty or json".into()),
        }
    }
}

/// A configuration variable with a value the service cannot run with.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}={value:?}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

impl Config {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Config, ConfigError> {
        // A missing .env is normal; a malformed one would leave every variable after the bad
        // line at its default, so it stops start-up.
        if let Err(err) = dotenvy::dotenv()
            && !err.not_found()
        {
            return Err(ConfigError {
                variable: ".env",
                value: "[file]".into(),
                problem: err.to_string(),
            });
        }
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables; tests pass a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let vars = Variables { lookup: &lookup };
        let config = Config {
            listen: vars.parse("AUTHGATE_LISTEN", "127.0.0.1:8080", |v| {
                v.parse().map_err(|_| "expected HOST:PORT".to_string())
            })?,
            database_url: vars.parse(
                "DATABASE_URL",
                "sqlite://data/authgate.db?mode=rwc",
                |v| {
                    if v.starts_with("sqlite:")
                        || v.starts_with("postgres://")
                        || v.starts_with("postgresql://")
                    {
                        Ok(Secret::new(v.to_string()))
                    } else {
                        Err("expected a sqlite:// or postgres:// URL".into())
                    }
                },
            )?,
            public_url: vars.parse("AUTHGATE_PUBLIC_URL", "http://127.0.0.1:8080", |v| {
                if v.starts_with("http://") || v.starts_with("https://") {
                    Ok(v.trim_end_matches('/').to_string())
                } else {
                    Err("expected an http:// or https:// URL".into())
                }
            })?,
            audience: vars.parse("AUTHGATE_AUDIENCE", "authgate", non_empty)?,
            mail: vars.parse("AUTHGATE_MAIL", "log", parse_mail_transport)?,
            mail_from: vars.parse("AUTHGATE_MAIL_FROM", "authgate <no-reply@localhost>", |v| {
                v.parse::<Mailbox>()
                    .map_err(|_| "expected an address like `Name <user@host>`".into())
            })?,
            access_ttl: vars.parse("AUTHGATE_ACCESS_TTL", "5m", positive_duration)?,
            refresh_ttl: vars.parse("AUTHGATE_REFRESH_TTL", "24h", positive_duration)?,
            session_max_age: vars.parse("AUTHGATE_SESSION_MAX_AGE", "30d", positive_duration)?,
            refresh_reuse_interval: vars.parse(
                "AUTHGATE_REFRESH_REUSE_INTERVAL",
                "10s",
                parse_duration,
            )?,
            jwt_algorithm: vars.parse("AUTHGATE_JWT_ALG", "EdDSA", str::parse)?,
            key_rotation: vars.parse("AUTHGATE_KEY_ROTATION", "off", |v| match v {
                "off" => Ok(None),
                _ => positive_duration(v).map(Some),
            })?,
            otp_ttl: vars.parse("AUTHGATE_OTP_TTL", "10m", positive_duration)?,
            otp_max_attempts: vars.parse("AUTHGATE_OTP_MAX_ATTEMPTS", "5", |v| {
                match v.parse() {
                    Ok(n) if (1..=1000).contains(&n) => Ok(n),
                    _ => Err("expected a whole number from 1 to 1000".into()),
                }
            })?,
            otp_resend_cooldown: vars.parse(
                "AUTHGATE_OTP_RESEND_COOLDOWN",
                "60s",
                parse_duration,
            )?,
            argon2: vars.parse("AUTHGATE_ARGON2", "m=19456,t=2,p=1", str::parse)?,
            password_min_length: vars.parse("AUTHGATE_PASSWORD_MIN_LENGTH", "8", |v| {
                match v.parse() {
                    Ok(n) if (1..=1024).contains(&n) => Ok(n),
                    _ => Err("expected a whole number from 1 to 1024".into()),
                }
            })?,
            allowed_email_domains: vars.parse("AUTHGATE_ALLOWED_EMAIL_DOMAINS", "", |v| {
                Ok(comma_list(v)
                    .map(|d| d.trim_start_matches('@').to_lowercase())
                    .collect())
            })?,
            self_assignable_roles: vars.parse(
                "AUTHGATE_SELF_ASSIGNABLE_ROLES",
                "user",
                parse_roles,
            )?,
            log_format: vars.parse("AUTHGATE_LOG_FORMAT", "pretty", str::parse)?,
            limits: Limits {
                login_ip: vars.parse("AUTHGATE_LIMIT_LOGIN_IP", "30/5m", parse_limit)?,
                login_account: vars.parse("AUTHGATE_LIMIT_LOGIN_ACCOUNT", "10/15m", parse_limit)?,
                register_ip: vars.parse("AUTHGATE_LIMIT_REGISTER_IP", "10/1h", parse_limit)?,
                otp_verify_ip: vars.parse("AUTHGATE_LIMIT_OTP_VERIFY_IP", "30/5m", parse_limit)?,
                mail_address: vars.parse("AUTHGATE_LIMIT_MAIL_ADDRESS", "5/1h", parse_limit)?,
                refresh_session: vars.parse(
                    "AUTHGATE_LIMIT_REFRESH_SESSION",
                    "60/1m",
                    parse_limit,
                )?,
            },
            trusted_proxies: vars.parse("AUTHGATE_TRUSTED_PROXIES", "", |v| {
                comma_list(v)
                    .map(|item| {
                        item.parse::<IpNet>()
                            .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                            .map_err(|_| format!("{item} is not an address or CIDR range"))
                    })
                    .collect()
            })?,
            cors_origins: vars.parse("AUTHGATE_CORS_ORIGINS", "", |v| {
                comma_list(v)
                    .map(|origin| {
                        if origin.starts_with("http://") || origin.starts_with("https://") {
                            Ok(origin.trim_end_matches('/').to_string())
                        } else {
                            Err(format!(
                                "{origin} is not an origin like https://app.example.com"
                            ))
                        }
                    })
                    .collect()
            })?,
            shutdown_grace: vars.parse("AUTHGATE_SHUTDOWN_GRACE", "30s", parse_duration)?,
            encryption_keys: vars.parse("AUTHGATE_ENCRYPTION_KEYS", "", |v| {
                Ok(Secret::new(v.to_string()))
            })?,
        };
        Ok(config)
    }

    /// The role a registrant gets when they do not pick one.
    pub fn default_role(&self) -> &str {
        &self.self_assignable_roles[0]
    }
}

struct Variables<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Variables<'_> {
    fn parse<T>(
        &self,
        variable: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let value = (self.lookup)(variable).unwrap_or_else(|| default.to_string());
        parse(value.trim()).map_err(|problem| ConfigError {
            variable,
            // Never echo a value that may hold credentials.
            value: if variable == "DATABASE_URL" || variable == "AUTHGATE_MAIL" {
                "[redacted]".into()
            } else {
                value.clone()
            },
            problem,
        })
    }
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(value.to_string())
    }
}

fn comma_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn parse_limit(value: &str) -> Result<Option<Limit>, String> {
    match value {
        "off" => Ok(None),
        _ => value.parse().map(Some),
    }
}

fn parse_roles(value: &str) -> Result<Vec<String>, String> {
    let roles: Vec<String> = comma_list(value).map(str::to_string).collect();
    if roles.is_empty() {
        return Err("at least one role is needed".into());
    }
    if roles.iter().any(|role| role.eq_ignore_ascii_case("admin")) {
        return Err("admin is never self-assignable".into());
    }
    Ok(roles)
}

/// Parses durations written like `90s`, `10m`, `24h` or `7d`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let invalid = || "expected a duration like 90s, 10m, 24h or 7d".to_string();
    let unit_at = value.len().checked_sub(1).ok_or_else(invalid)?;
    let (number, unit) = value.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    // Ten years is longer than any lifetime or window makes sense for, and keeps every
    // "now + duration" far from overflowing.
    const MAX_SECONDS: u64 = 3650 * 86_400;
    match number.checked_mul(seconds_per_unit) {
        Some(seconds) if seconds <= MAX_SECONDS => Ok(Duration::from_secs(seconds)),
        Some(_) => Err("at most 3650d".into()),
        None => Err(invalid()),
    }
}

fn positive_duration(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        Duration::ZERO => Err("must be longer than zero".into()),
        duration => Ok(duration),
    }
}

fn parse_mail_transport(value: &str) -> Result<MailTransport, String> {
    if value == "log" {
        return Ok(MailTransport::Log);
    }
    if let Some(directory) = value.strip_prefix("file://") {
        return non_empty(directory).map(|dir| MailTransport::File(PathBuf::from(dir)));
    }
    let (scheme, rest) = value
        .split_once("://")
        .ok_or("expected log, file://DIR, smtp://, smtp+starttls:// or smtps://")?;
    let (security, default_port) = match scheme {
        "smtp" => (SmtpSecurity::Plain, 25),
        "smtp+starttls" => (SmtpSecurity::StartTls, 587),
        "smtps" => (SmtpSecurity::Tls, 465),
        _ => return Err("expected log, file://DIR, smtp://, smtp+starttls:// or smtps://".into()),
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
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = value
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or("bad percent-encoding in the credentials")?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| "the credentials are not UTF-8".into())
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

    #[test]
    fn defaults_follow_the_contract() {
        let config = config_with(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database_url.expose(),
            "sqlite://data/authgate.db?mode=rwc"
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
        assert_eq!(config.mail, MailTransport::Log);
        assert_eq!(config.log_format, LogFormat::Pretty);
        let limit = |count, seconds| {
            Some(Limit {
                count,
                window: Duration::from_secs(seconds),
            })
        };
        assert_eq!(
            config.limits,
            Limits {
                login_ip: limit(30, 300),
                login_account: limit(10, 900),
                register_ip: limit(10, 3600),
                otp_verify_ip: limit(30, 300),
                mail_address: limit(5, 3600),
                refresh_session: limit(60, 60),
            }
        );
        assert!(config.trusted_proxies.is_empty());
        assert!(config.cors_origins.is_empty());
        assert_eq!(config.shutdown_grace, Duration::from_secs(30));
    }

    #[test]
    fn limits_proxies_and_origins_parse() {
        let config = config_with(&[
            ("AUTHGATE_LIMIT_LOGIN_IP", "off"),
            ("AUTHGATE_LIMIT_MAIL_ADDRESS", "3/10m"),
            ("AUTHGATE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7"),
            (
                "AUTHGATE_CORS_ORIGINS",
                "https://app.example.com/,http://localhost:3000",
            ),
        ])
        .unwrap();
        assert_eq!(config.limits.login_ip, None);
        assert_eq!(
            config.limits.mail_address,
            Some(Limit {
                count: 3,
                window: Duration::from_secs(600)
            })
        );
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(
            config.trusted_proxies[1].contains(&"192.168.1.7".parse::<std::net::IpAddr>().unwrap())
        );
        assert_eq!(
            config.cors_origins,
            vec!["https://app.example.com", "http://localhost:3000"]
        );
        for (variable, value) in [
            ("AUTHGATE_LIMIT_LOGIN_IP", "30"),
            ("AUTHGATE_LIMIT_LOGIN_IP", "0/5m"),
            ("AUTHGATE_LIMIT_LOGIN_IP", "x/5m"),
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
    fn durations_take_every_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "s", "10", "10x", "-5m", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (variable, value) in [
            ("AUTHGATE_ACCESS_TTL", "five minutes"),
            ("AUTHGATE_ACCESS_TTL", "0s"),
            ("AUTHGATE_LISTEN", "nowhere"),
            ("AUTHGATE_JWT_ALG", "HS256"),
            ("AUTHGATE_ARGON2", "m=1,t=1,p=1"),
            ("AUTHGATE_OTP_MAX_ATTEMPTS", "0"),
            ("AUTHGATE_SELF_ASSIGNABLE_ROLES", "user,admin"),
            ("AUTHGATE_MAIL", "carrier-pigeon://coop"),
            ("AUTHGATE_LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://root@localhost/db"),
        ] {
            let error = config_with(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable);
            assert!(error.to_string().contains(variable));
        }
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

        let config = config_with(&[("AUTHGATE_MAIL", "file:///tmp/mail")]).unwrap();
        assert_eq!(config.mail, MailTransport::File(PathBuf::from("/tmp/mail")));
    }

    #[test]
    fn secrets_do_not_print() {
        let config = config_with(&[("DATABASE_URL", "postgres://u:hunter2@db/x")]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let error = config_with(&[("AUTHGATE_MAIL", "smtps://u:hunter2@")]).unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
    }
}
