//! The mails authgate sends. The plain-text part carries a code alone on its own line, so a
//! person can copy it and a test can find it.

use std::time::Duration;

/// Every kind of mail, for metric labels.
pub const KINDS: &[&str] = &[
    "verification_code",
    "password_reset_code",
    "password_changed",
    "account_locked",
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

pub fn password_changed() -> Mail {
    let text = "Your password was changed and every signed-in device was signed out.\n\
                If this was not you, reset your password at once.";
    Mail {
        kind: "password_changed",
        subject: "Your password was changed".into(),
        text: text.into(),
        html: paragraphs(text),
    }
}

pub fn account_locked(window: Duration) -> Mail {
    let minutes = window.as_secs().div_ceil(60);
    let text = format!(
        "There were too many failed sign-ins to your account, so sign-in is locked for {minutes} minutes.\n\
         If this was you, wait and try again, or reset your password. If not, someone is guessing \
         your password: consider changing it."
    );
    Mail {
        kind: "account_locked",
        subject: "Sign-in to your account is locked".into(),
        html: paragraphs(&text),
        text,
    }
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
