//! The mails authgate sends. The plain-text part carries a code alone on its own line, so a
//! person can copy it and a test can find it.

use std::time::Duration;

/// Every kind of mail, for metric labels.
pub const KINDS: &[&str] = &[
    "verification_code",
    "password_reset_code",
    "password_changed",
    "account_locked",
    "invitation",
    "email_change_code",
    "email_changed",
    "deletion_scheduled",
    "deletion_cancelled",
    "sign_in_code",
    "recovery_code_used",
    "mfa_reset",
];

pub struct Mail {
    /// What the mail is, one of [`KINDS`].
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn verification_code(code: &str, valid_for: Duration) -> Mail {
    code_mail(
        "verification_code",
        "Verify your email address",
        "Use this code to verify your email address:",
        code,
        valid_for,
    )
}

pub fn password_reset_code(code: &str, valid_for: Duration) -> Mail {
    code_mail(
        "password_reset_code",
        "Reset your password",
        "Use this code to reset your password:",
        code,
        valid_for,
    )
}

/// An account an admin created without a password: the code sets one, like a reset.
pub fn invitation(code: &str, valid_for: Duration) -> Mail {
    code_mail(
        "invitation",
        "You are invited: set your password",
        "An account was created for you. Use this code to set your password:",
        code,
        valid_for,
    )
}

pub fn email_change_code(code: &str, valid_for: Duration) -> Mail {
    code_mail(
        "email_change_code",
        "Confirm your new email address",
        "Use this code to make this your account's address:",
        code,
        valid_for,
    )
}

pub fn sign_in_code(code: &str, valid_for: Duration) -> Mail {
    code_mail(
        "sign_in_code",
        "Your sign-in code",
        "Use this code to finish signing in:",
        code,
        valid_for,
    )
}

/// To the old address after a change: whoever lost control of it must learn of it.
pub fn email_changed(new_address: &str) -> Mail {
    notice(
        "email_changed",
        "Your email address was changed",
        &format!(
            "Your account's address was changed to {new_address}, and every other signed-in device was signed out.\n\
             If this was not you, contact support at once."
        ),
    )
}

pub fn deletion_scheduled(on: chrono::DateTime<chrono::Utc>) -> Mail {
    notice(
        "deletion_scheduled",
        "Your account will be deleted",
        &format!(
            "Your account is scheduled for deletion on {} (UTC) and every device was signed out.\n\
             To keep it, sign in again before then with POST /auth/restore (your app offers this as \"restore\").",
            on.format("%Y-%m-%d %H:%M")
        ),
    )
}

pub fn deletion_cancelled() -> Mail {
    notice(
        "deletion_cancelled",
        "Your account was restored",
        "You signed in again, so your account will not be deleted.",
    )
}

pub fn recovery_code_used(left: usize) -> Mail {
    notice(
        "recovery_code_used",
        "A recovery code was used to sign in",
        &format!(
            "One of your recovery codes was just used to sign in; {left} are left.\n\
             If this was not you, change your password and your second factors at once."
        ),
    )
}

pub fn mfa_reset() -> Mail {
    notice(
        "mfa_reset",
        "Your second factors were reset",
        "An administrator removed your second factors, recovery codes and trusted devices.\n\
         Set up two-factor sign-in again in your account settings.",
    )
}

pub fn password_changed() -> Mail {
    notice(
        "password_changed",
        "Your password was changed",
        "Your password was changed and every signed-in device was signed out.\n\
         If this was not you, reset your password at once.",
    )
}

pub fn account_locked(window: Duration) -> Mail {
    let minutes = window.as_secs().div_ceil(60);
    notice(
        "account_locked",
        "Sign-in to your account is locked",
        &format!(
            "There were too many failed sign-ins to your account, so sign-in is locked for {minutes} minutes.\n\
             If this was you, wait and try again, or reset your password. If not, someone is guessing \
             your password: consider changing it."
        ),
    )
}

fn code_mail(
    kind: &'static str,
    subject: &str,
    lead: &str,
    code: &str,
    valid_for: Duration,
) -> Mail {
    let minutes = valid_for.as_secs().div_ceil(60);
    let footer = format!(
        "The code expires in {minutes} minute{}. If you did not ask for it, ignore this mail.",
        if minutes == 1 { "" } else { "s" }
    );
    Mail {
        kind,
        subject: subject.into(),
        text: format!("{lead}\n\n{code}\n\n{footer}\n"),
        html: format!(
            "<p>{lead}</p>\n<p style=\"font-size:24px;font-weight:bold;letter-spacing:4px\">{code}</p>\n<p>{footer}</p>\n"
        ),
    }
}

fn notice(kind: &'static str, subject: &str, text: &str) -> Mail {
    Mail {
        kind,
        subject: subject.into(),
        text: text.into(),
        html: paragraphs(&escape(text)),
    }
}

/// Addresses and dates in a notice are the only values not written here: escaped all the
/// same, so nothing a user typed becomes markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn paragraphs(text: &str) -> String {
    text.lines()
        .map(|line| format!("<p>{line}</p>\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_stands_alone_on_its_line() {
        let mail = verification_code("042917", Duration::from_secs(600));
        assert!(mail.subject.contains("Verify"));
        assert!(mail.text.lines().any(|line| line == "042917"));
        assert!(mail.text.contains("10 minutes"));
        assert!(
            password_reset_code("1", Duration::from_secs(60))
                .subject
                .contains("Reset")
        );
        assert!(password_changed().subject.contains("changed"));
    }
}
