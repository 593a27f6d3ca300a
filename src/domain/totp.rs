//! Time-based one-time passwords (RFC 6238), the second factor of an authenticator app.
//!
//! The parameters are the ones every authenticator app supports: HMAC-SHA-1, six digits,
//! 30-second steps. One step either side of the server's is accepted, the network delay and
//! clock drift RFC 6238 §5.2 allows for. The same section requires that a code be accepted
//! only once: [`verify`] refuses every step up to the last one used and returns the step it
//! matched, which the caller stores with a compare-and-set so that two racing requests cannot
//! both spend one step.
//!
//! [`setup`] draws a secret and the `otpauth://` URI and QR code that hand it to the app.

use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD};
use qrcode::{QrCode, render::svg};
use rand::{RngCore, rngs::OsRng};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Digits in a code.
const DIGITS: usize = 6;
/// Seconds a code lasts: the step of RFC 6238.
const STEP_SECONDS: u64 = 30;
/// Steps either side of the current one that are still accepted.
const ACCEPTED_SKEW_STEPS: u64 = 1;
/// 160 bits, the secret length RFC 4226 §4 recommends.
const SECRET_BYTES: usize = 20;
/// 128 bits, the shortest secret RFC 4226 §4 allows.
const MIN_SECRET_BYTES: usize = 16;

/// The key shared with the authenticator app. `Debug` never shows it.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// 20 bytes from the operating system's CSPRNG.
    pub fn generate() -> TotpSecret {
        let mut bytes = vec![0; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// Reads back a secret stored with [`TotpSecret::to_base32`]. `None` for text that is not
    /// unpadded RFC 4648 base32 of at least 128 bits.
    pub fn from_base32(encoded: &str) -> Option<TotpSecret> {
        let secret = Secret::try_from_base32(encoded).ok()?;
        (secret.as_bytes().len() >= MIN_SECRET_BYTES).then(|| TotpSecret(secret.as_bytes().into()))
    }

    /// Unpadded RFC 4648 base32, what authenticator apps accept when a person types the key.
    pub fn to_base32(&self) -> String {
        Secret::from(self.0.as_slice()).to_base32()
    }

    /// Our parameters stated, none of them left to the library's defaults.
    fn builder(&self) -> Builder {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.0.as_slice())
    }

    fn totp(&self) -> Totp {
        // The checks `build` would make concern the secret's length, which `TotpSecret`
        // guarantees, and the issuer and account, which checking a code does not use.
        self.builder().build_noncompliant()
    }
}

/// What a person needs to add the account to an authenticator app. `Debug` shows none of it:
/// the URI and the QR code carry the secret too.
pub struct TotpSetup {
    /// The new secret; [`TotpSecret::to_base32`] is the key to show for typing it in.
    pub secret: TotpSecret,
    /// `otpauth://totp/{issuer}:{account}?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
    pub otpauth_uri: String,
    /// The URI as a QR code: `data:image/svg+xml;base64,…`, ready for an `<img src>`.
    pub qr_code_data_url: String,
}

impl fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSetup([redacted])")
    }
}

/// Why a setup could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum TotpSetupError {
    /// The app shows the label `issuer:account`, so neither may be empty or hold a colon.
    #[error("the issuer and account must be non-empty and contain no colon")]
    InvalidLabel,
    /// The URI does not fit in a QR code (only an absurdly long issuer or account does that).
    #[error("the otpauth URI does not fit in a QR code: {0}")]
    QrCode(#[from] qrcode::types::QrError),
}

/// A new secret for `account` (the person's email address) at `issuer` (the service's name,
/// shown by the app), with its URI and QR code.
pub fn setup(issuer: &str, account: &str) -> Result<TotpSetup, TotpSetupError> {
    setup_with_secret(TotpSecret::generate(), issuer, account)
}

fn setup_with_secret(
    secret: TotpSecret,
    issuer: &str,
    account: &str,
) -> Result<TotpSetup, TotpSetupError> {
    if issuer.is_empty() {
        return Err(TotpSetupError::InvalidLabel);
    }
    let labelled = secret
        .builder()
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|_| TotpSetupError::InvalidLabel)?;
    // totp-rs percent-encodes the label and the issuer but leaves out parameters equal to the
    // defaults; we state them, so that no app has to guess.
    let otpauth_uri = format!(
        "{}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        labelled
            .to_url()
            .map_err(|_| TotpSetupError::InvalidLabel)?
    );
    let svg_image = QrCode::new(otpauth_uri.as_bytes())?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let qr_code_data_url = format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg_image));
    Ok(TotpSetup {
        secret,
        otpauth_uri,
        qr_code_data_url,
    })
}

/// Checks `code` against `secret` at `unix_time` (seconds), accepting the current step and
/// one either side. Returns the step that matched, which the caller stores as the new
/// `last_used_step`; steps up to `last_used_step` are refused, so a code cannot be replayed
/// (RFC 6238 §5.2), nor one older than a code already used.
///
/// Spaces are ignored (apps show `123 456`); anything but six digits is refused.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    unix_time: i64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let offered = six_digits(code)?;
    let current_step = u64::try_from(unix_time).ok()? / STEP_SECONDS;
    let totp = secret.totp();
    let mut matched = None;
    // Every candidate is compared, in constant time, whatever matched before. Should two
    // steps give the same code, the later one wins, which refuses more on the next use.
    for step in
        current_step.saturating_sub(ACCEPTED_SKEW_STEPS)..=current_step + ACCEPTED_SKEW_STEPS
    {
        let step_number = i64::try_from(step).ok()?;
        if last_used_step.is_some_and(|last_used| step_number <= last_used) {
            continue;
        }
        if bool::from(code_at_step(&totp, step).as_bytes().ct_eq(&offered)) {
            matched = Some(step_number);
        }
    }
    matched
}

/// The code's digits once spaces are dropped, or `None` when they are not exactly six.
fn six_digits(code: &str) -> Option<[u8; DIGITS]> {
    let mut digits = [0; DIGITS];
    let mut count = 0;
    for byte in code.bytes().filter(|byte| *byte != b' ') {
        if !byte.is_ascii_digit() || count == DIGITS {
            return None;
        }
        digits[count] = byte;
        count += 1;
    }
    (count == DIGITS).then_some(digits)
}

/// The code of `step`, zero-padded to six digits.
fn code_at_step(totp: &Totp, step: u64) -> String {
    totp.generate(step * STEP_SECONDS).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-1 seed of RFC 6238 Appendix B.
    fn rfc_secret() -> TotpSecret {
        TotpSecret(b"12345678901234567890".to_vec())
    }

    fn step_of(unix_time: i64) -> i64 {
        unix_time / STEP_SECONDS as i64
    }

    fn code_for(secret: &TotpSecret, step: i64) -> String {
        code_at_step(&secret.totp(), u64::try_from(step).unwrap())
    }

    #[test]
    fn rfc_6238_sha1_vectors() {
        // Appendix B lists eight digits; six-digit codes are their last six.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let secret = rfc_secret();
        for (unix_time, eight_digits) in vectors {
            let code = &eight_digits[2..];
            assert_eq!(
                code_for(&secret, step_of(unix_time)),
                code,
                "at {unix_time}"
            );
            assert_eq!(
                verify(&secret, code, unix_time, None),
                Some(step_of(unix_time)),
                "at {unix_time}"
            );
        }
    }

    #[test]
    fn one_step_either_side_is_accepted() {
        let secret = TotpSecret::generate();
        let step = step_of(1_700_000_000);
        let code = code_for(&secret, step);
        for offset in [-1, 0, 1] {
            let now = (step + offset) * STEP_SECONDS as i64 + 7;
            assert_eq!(
                verify(&secret, &code, now, None),
                Some(step),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn two_steps_away_is_refused() {
        let secret = rfc_secret();
        let step = step_of(1_700_000_000);
        let code = code_for(&secret, step);
        for offset in [-2, 2] {
            let now = (step + offset) * STEP_SECONDS as i64;
            assert_eq!(verify(&secret, &code, now, None), None, "offset {offset}");
        }
    }

    #[test]
    fn a_used_step_is_refused() {
        let secret = rfc_secret();
        let step = step_of(1_700_000_000);
        let now = step * STEP_SECONDS as i64;
        let code = code_for(&secret, step);
        assert_eq!(verify(&secret, &code, now, Some(step - 1)), Some(step));
        assert_eq!(verify(&secret, &code, now, Some(step)), None);
        // An older code, still inside the window, after a newer one was used.
        let older = code_for(&secret, step - 1);
        assert_eq!(verify(&secret, &older, now, Some(step)), None);
        // A later step (the app's clock ahead) was used: the current code is older still.
        assert_eq!(verify(&secret, &code, now, Some(step + 1)), None);
    }

    #[test]
    fn spaces_are_ignored_and_anything_but_six_digits_refused() {
        let secret = rfc_secret();
        assert_eq!(verify(&secret, "287 082", 59, None), Some(1));
        assert_eq!(verify(&secret, " 287082 ", 59, None), Some(1));
        for bad in [
            "",
            "28708",
            "2870820",
            "94287082",
            "28708a",
            "287-082",
            "２８７０８２",
            "+28708",
        ] {
            assert_eq!(verify(&secret, bad, 59, None), None, "{bad:?}");
        }
        assert_eq!(verify(&secret, "287082", -1, None), None);
        assert_eq!(verify(&secret, "000000", 59, None), None);
    }

    #[test]
    fn the_secret_is_160_bits_and_round_trips_through_base32() {
        let secret = TotpSecret::generate();
        assert_eq!(secret.0.len(), 20);
        let encoded = secret.to_base32();
        assert_eq!(encoded.len(), 32);
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(TotpSecret::from_base32(&encoded).unwrap().0, secret.0);
        assert_ne!(TotpSecret::generate().0, secret.0);
        assert!(TotpSecret::from_base32("not base32!").is_none());
        // 80 bits: shorter than RFC 4226 allows.
        assert!(TotpSecret::from_base32("GEZDGNBVGY3TQOJQ").is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = rfc_secret();
        let shown = format!("{secret:?}");
        assert!(!shown.contains(&secret.to_base32()) && !shown.contains("1234"));
        let setup = setup("authgate", "ada@example.com").unwrap();
        let shown = format!("{setup:?}");
        assert!(!shown.contains(&setup.secret.to_base32()) && !shown.contains("otpauth"));
    }

    #[test]
    fn the_uri_is_what_authenticator_apps_read() {
        let secret = rfc_secret();
        let setup =
            setup_with_secret(secret.clone(), "Auth Gate & Co", "ada+2fa@example.com").unwrap();
        assert_eq!(
            setup.otpauth_uri,
            format!(
                "otpauth://totp/Auth%20Gate%20%26%20Co:ada%2B2fa%40example.com?secret={}\
                 &issuer=Auth%20Gate%20%26%20Co&algorithm=SHA1&digits=6&period=30",
                secret.to_base32()
            )
        );

        let parsed = Totp::from_url(&setup.otpauth_uri).unwrap();
        assert_eq!(parsed.issuer(), Some("Auth Gate & Co"));
        assert_eq!(parsed.account_name(), "ada+2fa@example.com");
        assert_eq!(parsed.secret().as_bytes(), b"12345678901234567890");
        assert_eq!(parsed.algorithm(), Algorithm::SHA1);
        assert_eq!((parsed.digits(), parsed.step()), (6, 30));
        assert_eq!(parsed.generate(59).to_string(), "287082");
    }

    #[test]
    fn a_label_the_app_cannot_show_is_refused() {
        for (issuer, account) in [
            ("", "ada@example.com"),
            ("authgate", ""),
            ("auth:gate", "ada@example.com"),
            ("authgate", "ada:x@example.com"),
        ] {
            assert!(
                matches!(setup(issuer, account), Err(TotpSetupError::InvalidLabel)),
                "{issuer:?} {account:?}"
            );
        }
    }

    #[test]
    fn the_qr_code_is_an_svg_data_url() {
        let setup = setup("authgate", "ada@example.com").unwrap();
        let encoded = setup
            .qr_code_data_url
            .strip_prefix("data:image/svg+xml;base64,")
            .unwrap();
        let svg_image = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert!(svg_image.starts_with("<?xml"));
        assert!(svg_image.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg_image.trim_end().ends_with("</svg>"));
    }
}
