//! Mail transports through lettre: printed to the log, written to files, or sent over SMTP.
//! Requests never call these: they store mail in the outbox (`domain::outbox`), whose worker
//! does.

pub mod templates;

use std::time::Duration;

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::authentication::Credentials,
};

use crate::{
    config::{MailTransport, SmtpSecurity, SmtpSettings},
    telemetry::metrics,
};

pub use templates::Mail;

/// How long one SMTP conversation may take before the mail counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("mail could not be sent: {0}")]
pub struct MailError(String);

enum Transport {
    Log,
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn new(transport: &MailTransport, from: Mailbox) -> Result<Mailer, MailError> {
        let transport = match transport {
            MailTransport::Log => {
                tracing::warn!(
                    "AUTHGATE_MAIL=log prints every mail, codes included, to the log: \
                     for development only, never for production"
                );
                Transport::Log
            }
            MailTransport::File(directory) => {
                std::fs::create_dir_all(directory).map_err(|err| {
                    MailError(format!("cannot create {}: {err}", directory.display()))
                })?;
                Transport::File(AsyncFileTransport::new(directory))
            }
            MailTransport::Smtp(settings) => Transport::Smtp(smtp_transport(settings)?),
        };
        Ok(Mailer { transport, from })
    }

    pub async fn send(&self, to: &str, mail: Mail) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|err| MailError(format!("recipient: {err}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html,
            ))
            .map_err(|err| MailError(format!("building the message: {err}")))?;
        let kind = mail.kind;
        let sent = match &self.transport {
            Transport::Log => {
                // The development transport exists to show the code; nothing else logs one.
                tracing::info!(to = %to, subject = %mail.subject, body = %mail.text, "mail (AUTHGATE_MAIL=log)");
                Ok(())
            }
            Transport::File(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|err| MailError(err.to_string())),
            Transport::Smtp(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|err| MailError(err.to_string())),
        };
        let counter = if sent.is_ok() {
            metrics::MAILS_SENT
        } else {
            metrics::MAIL_FAILURES
        };
        ::metrics::counter!(counter, "kind" => kind).increment(1);
        sent
    }
}

fn smtp_transport(
    settings: &SmtpSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let tls_failed = |err: lettre::transport::smtp::Error| MailError(format!("TLS setup: {err}"));
    let builder = match settings.security {
        SmtpSecurity::Plain => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        }
        SmtpSecurity::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                .map_err(tls_failed)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host).map_err(tls_failed)?
        }
    };
    let builder = builder.port(settings.port).timeout(Some(SMTP_TIMEOUT));
    let builder = match &settings.credentials {
        Some((user, password)) => {
            builder.credentials(Credentials::new(user.clone(), password.expose().clone()))
        }
        None => builder,
    };
    Ok(builder.build())
}
