//! The one place where failures become HTTP: every contract error code, its status, and the
//! `{"error", "message", "fields"}` body. Domain errors map here; so do poem's own errors
//! (unknown route, wrong method, unreadable body), so every error has the same shape.

use std::{
    collections::{BTreeMap, HashMap},
    marker::PhantomData,
    sync::{Mutex, OnceLock, PoisonError},
};

use poem::{
    IntoResponse, Response,
    error::ResponseError,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{
        MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
    },
    types::{ToJSON, Type},
};

use crate::domain::error::{AuthError, chain};

/// Declares every error code of the contract, each once: its variant, HTTP status, wire code
/// and the sentence a person reads (which is also its OpenAPI description).
macro_rules! error_codes {
    ($($variant:ident = ($status:ident, $code:literal, $message:literal)),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant),+
        }

        impl ErrorCode {
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status),+
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code),+
                }
            }

            /// The sentence a person reads in `message`.
            pub fn message(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $message),+
                }
            }
        }
    };
}

error_codes! {
    ValidationFailed = (BAD_REQUEST, "validation_failed", "Some fields are missing or invalid."),
    InvalidJson = (BAD_REQUEST, "invalid_json", "The request body is not valid JSON."),
    InvalidOtp = (BAD_REQUEST, "invalid_otp", "The code is wrong, has expired or was already used."),
    OtpLocked = (BAD_REQUEST, "otp_locked", "Too many wrong codes. Ask for a new code."),
    InvalidImage = (BAD_REQUEST, "invalid_image",
        "The picture is not a PNG, JPEG or WebP image of at most 4096×4096 pixels."),
    NotRevertible = (BAD_REQUEST, "not_revertible", "This event cannot be reverted: it changed no fields, or an uploaded picture that is gone."),
    InvalidMfaCode = (BAD_REQUEST, "invalid_mfa_code", "The second-factor code is wrong or was already used."),
    NoPendingSetup = (BAD_REQUEST, "no_pending_setup", "Start with POST /auth/mfa/totp/setup."),
    Unauthorized = (UNAUTHORIZED, "unauthorized",
        "Sign in to do this: the access token is missing, invalid or expired."),
    InvalidCredentials = (UNAUTHORIZED, "invalid_credentials", "The email or password is wrong."),
    InvalidRefreshToken = (UNAUTHORIZED, "invalid_refresh_token",
        "The refresh token is unknown, expired or revoked. Sign in again."),
    InvalidMfaToken = (UNAUTHORIZED, "invalid_mfa_token",
        "The sign-in attempt is unknown, expired or used up. Sign in again."),
    RefreshTokenReused = (UNAUTHORIZED, "refresh_token_reused",
        "This refresh token was already used. The session was ended for safety; sign in again."),
    EmailDomainNotAllowed = (FORBIDDEN, "email_domain_not_allowed",
        "Addresses of this email domain are not accepted."),
    RoleNotAllowed = (FORBIDDEN, "role_not_allowed", "This role cannot be chosen at registration."),
    EmailNotVerified = (FORBIDDEN, "email_not_verified",
        "Verify your email address first: we sent you a code."),
    AccountDisabled = (FORBIDDEN, "account_disabled", "This account is disabled."),
    AccountPendingDeletion = (FORBIDDEN, "account_pending_deletion",
        "This account is scheduled for deletion. Restore it with POST /auth/restore to keep it."),
    Forbidden = (FORBIDDEN, "forbidden", "Your account may not do this."),
    MfaRequired = (FORBIDDEN, "mfa_required", "A second factor is needed: see `methods`."),
    OriginNotAllowed = (FORBIDDEN, "origin_not_allowed",
        "This origin may not call the API from a browser."),
    NotFound = (NOT_FOUND, "not_found", "There is nothing here."),
    MethodNotAllowed = (METHOD_NOT_ALLOWED, "method_not_allowed", "This method is not allowed here."),
    EmailTaken = (CONFLICT, "email_taken", "An account with this email already exists."),
    UsernameTaken = (CONFLICT, "username_taken", "This username is taken."),
    AlreadyVerified = (CONFLICT, "already_verified", "This account is already verified. Sign in."),
    NotPendingDeletion = (CONFLICT, "not_pending_deletion", "This account is not scheduled for deletion."),
    LastAdmin = (CONFLICT, "last_admin", "This change would leave no active admin."),
    CannotTargetSelf = (CONFLICT, "cannot_target_self",
        "Admins do not disable, delete or anonymize their own account here: use /auth/me/delete."),
    Conflict = (CONFLICT, "conflict", "The fields in `fields` changed since this event; nothing was reverted."),
    AlreadyEnabled = (CONFLICT, "already_enabled", "This second factor is already on."),
    PayloadTooLarge = (PAYLOAD_TOO_LARGE, "payload_too_large",
        "The request body is larger than this operation takes (64 KiB of JSON; pictures have their own limit)."),
    UnsupportedMediaType = (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
        "Send the request body as application/json, or as the content type the operation names."),
    ResendTooSoon = (TOO_MANY_REQUESTS, "resend_too_soon",
        "A code was sent moments ago. Wait before asking for another."),
    RateLimited = (TOO_MANY_REQUESTS, "rate_limited", "Too many attempts. Wait before trying again."),
    InternalError = (INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side."),
    Overloaded = (SERVICE_UNAVAILABLE, "overloaded", "The service is busy. Try again in a moment."),
    Unavailable = (SERVICE_UNAVAILABLE, "unavailable", "The service is temporarily unavailable."),
    NotReady = (SERVICE_UNAVAILABLE, "not_ready", "The database does not answer: send traffic elsewhere."),
}

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct ErrorBody {
    /// Stable, snake_case error code to branch on.
    pub error: String,
    /// A sentence for a person.
    pub message: String,
    /// With `validation_failed`: the problems of each field; with `conflict`: the fields that
    /// changed since.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
    /// With 429 and some 503s: whole seconds to wait before retrying.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// With `email_not_verified`: a new code can be requested with `/auth/resend-otp`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_resend_otp: Option<bool>,
    /// With `account_pending_deletion`: when the account goes for good.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    /// With `account_pending_deletion`: `POST /auth/restore` keeps the account.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_restore: Option<bool>,
    /// With `mfa_required` at sign-in: the single-use token for `/auth/mfa/challenge` and
    /// `/auth/mfa/verify`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    /// With `mfa_required`: the second factors that can be used (`totp`, `email`,
    /// `recovery_code`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// With `mfa_required` at sign-in: seconds the `mfa_token` is valid.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        *ApiError::validation("email", "Enter a valid email address.").body
    }
}

/// An error on its way to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} {}", self.code.status(), self.code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    // Boxed: errors travel through every `Result` of the HTTP layer.
    body: Box<ErrorBody>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            body: Box::new(ErrorBody {
                error: code.as_str().into(),
                message: code.message().into(),
                fields: None,
                retry_after: None,
                can_resend_otp: (code == ErrorCode::EmailNotVerified).then_some(true),
                deletion_scheduled_for: None,
                can_restore: None,
                mfa_token: None,
                methods: None,
                expires_in: None,
            }),
        }
    }

    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    pub fn with_fields(mut self, fields: BTreeMap<String, Vec<String>>) -> Self {
        self.body.fields = Some(fields);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.body.message = message.into();
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.body.retry_after = Some(seconds);
        self
    }

    pub fn validation(field: &str, problem: &str) -> Self {
        ApiError::new(ErrorCode::ValidationFailed).with_fields(BTreeMap::from([(
            field.to_string(),
            vec![problem.to_string()],
        )]))
    }

    /// Turns any error poem or poem-openapi raised before a handler ran into the contract's
    /// shape. Details stay in the log.
    pub fn from_poem(err: poem::Error) -> ApiError {
        if let Some(api_error) = err.downcast_ref::<ApiError>() {
            return api_error.clone();
        }
        // A query or path parameter that is missing or not of its type: named, so a client
        // sees which (the library's reason stays out of the response).
        if let Some(param) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
            return ApiError::validation(
                param.name,
                "Missing, or not a value of this parameter's type.",
            );
        }
        let code = match err.status() {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::FORBIDDEN => ErrorCode::OriginNotAllowed,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::BAD_REQUEST => ErrorCode::ValidationFailed,
            status if status.is_client_error() => ErrorCode::ValidationFailed,
            _ => ErrorCode::InternalError,
        };
        if code == ErrorCode::InternalError {
            tracing::error!(error = %err, "unhandled error");
        }
        if code == ErrorCode::ValidationFailed {
            return ApiError::validation("request", "The request is malformed.");
        }
        ApiError::new(code)
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let code = match &err {
            AuthError::Validation(_) => ErrorCode::ValidationFailed,
            AuthError::EmailDomainNotAllowed => ErrorCode::EmailDomainNotAllowed,
            AuthError::RoleNotAllowed => ErrorCode::RoleNotAllowed,
            AuthError::EmailTaken => ErrorCode::EmailTaken,
            AuthError::InvalidOtp => ErrorCode::InvalidOtp,
            AuthError::OtpLocked => ErrorCode::OtpLocked,
            AuthError::AlreadyVerified => ErrorCode::AlreadyVerified,
            AuthError::ResendTooSoon { .. } => ErrorCode::ResendTooSoon,
            AuthError::RateLimited { .. } => ErrorCode::RateLimited,
            AuthError::InvalidCredentials => ErrorCode::InvalidCredentials,
            AuthError::EmailNotVerified => ErrorCode::EmailNotVerified,
            AuthError::AccountDisabled => ErrorCode::AccountDisabled,
            AuthError::AccountPendingDeletion { .. } => ErrorCode::AccountPendingDeletion,
            AuthError::NotPendingDeletion => ErrorCode::NotPendingDeletion,
            AuthError::UsernameTaken => ErrorCode::UsernameTaken,
            AuthError::InvalidImage => ErrorCode::InvalidImage,
            AuthError::Forbidden => ErrorCode::Forbidden,
            AuthError::LastAdmin => ErrorCode::LastAdmin,
            AuthError::CannotTargetSelf => ErrorCode::CannotTargetSelf,
            AuthError::NotRevertible => ErrorCode::NotRevertible,
            AuthError::Conflict(_) => ErrorCode::Conflict,
            AuthError::MfaRequired { .. } => ErrorCode::MfaRequired,
            AuthError::InvalidMfaToken => ErrorCode::InvalidMfaToken,
            AuthError::InvalidMfaCode => ErrorCode::InvalidMfaCode,
            AuthError::AlreadyEnabled => ErrorCode::AlreadyEnabled,
            AuthError::NoPendingSetup => ErrorCode::NoPendingSetup,
            AuthError::InvalidRefreshToken => ErrorCode::InvalidRefreshToken,
            AuthError::RefreshTokenReused => ErrorCode::RefreshTokenReused,
            AuthError::Unauthorized => ErrorCode::Unauthorized,
            AuthError::NotFound => ErrorCode::NotFound,
            AuthError::Overloaded { .. } => ErrorCode::Overloaded,
            AuthError::Unavailable(_) => ErrorCode::Unavailable,
            AuthError::Internal { .. } => ErrorCode::InternalError,
        };
        if matches!(code, ErrorCode::InternalError | ErrorCode::Unavailable) {
            // The whole chain of causes goes to the log, never to the client.
            tracing::error!(error = %chain(&err), "request failed on the server's side");
        }
        let error = ApiError::new(code);
        match err {
            AuthError::Validation(fields) | AuthError::Conflict(fields) => {
                error.with_fields(fields.into_map())
            }
            AuthError::AccountPendingDeletion {
                deletion_scheduled_for,
            } => {
                let mut error = error;
                error.body.deletion_scheduled_for = Some(deletion_scheduled_for);
                error.body.can_restore = Some(true);
                error
            }
            AuthError::MfaRequired { challenge, methods } => {
                let mut error = error;
                error.body.methods = Some(methods);
                if let Some(challenge) = challenge {
                    error.body.mfa_token = Some(challenge.token);
                    error.body.expires_in = Some(challenge.expires_in);
                }
                error
            }
            AuthError::ResendTooSoon {
                retry_after_seconds,
            }
            | AuthError::RateLimited {
                retry_after_seconds,
                ..
            }
            | AuthError::Overloaded {
                retry_after_seconds,
            } => error.with_retry_after(retry_after_seconds),
            AuthError::Unavailable(_) => error.with_retry_after(5),
            _ => error,
        }
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.code.status()
    }

    fn as_response(&self) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = Response::builder()
            .status(self.code.status())
            .content_type("application/json; charset=utf-8")
            .body(body);
        let headers = response.headers_mut();
        if let Some(seconds) = self.body.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code.status() == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

/// The errors one operation can answer with, for its OpenAPI document.
pub trait ErrorSet: Send + Sync + 'static {
    /// Groups of codes: those of the operation's inputs ([`JSON_BODY`], [`BEARER`]), then
    /// its own.
    const CODES: &'static [&'static [ErrorCode]];
    /// What any operation may answer with on top of its own codes: a fault of ours, and the
    /// database out of reach.
    const ALWAYS: &'static [ErrorCode] = &[ErrorCode::InternalError, ErrorCode::Unavailable];
}

/// What any operation that reads a JSON body may answer.
pub const JSON_BODY: &[ErrorCode] = &[
    ErrorCode::ValidationFailed,
    ErrorCode::InvalidJson,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::PayloadTooLarge,
];

/// What any operation behind the bearer scheme may answer.
pub const BEARER: &[ErrorCode] = &[ErrorCode::Unauthorized];

/// Declares an [`ErrorSet`]: `error_set!(LoginErrors[JSON_BODY]: InvalidCredentials, ...)`.
/// `error_set!(offline Name: ...)` declares one for an operation that never touches the
/// database, so it does not list 503 `unavailable`.
macro_rules! error_set {
    (offline $name:ident $(: $($code:ident),+)? $(,)?) => {
        pub struct $name;
        impl $crate::api::error::ErrorSet for $name {
            const CODES: &'static [&'static [$crate::api::error::ErrorCode]] =
                &[&[$($($crate::api::error::ErrorCode::$code),+)?]];
            const ALWAYS: &'static [$crate::api::error::ErrorCode] =
                &[$crate::api::error::ErrorCode::InternalError];
        }
    };
    ($name:ident $([$($input:ident),+])? $(: $($code:ident),+)? $(,)?) => {
        pub struct $name;
        impl $crate::api::error::ErrorSet for $name {
            const CODES: &'static [&'static [$crate::api::error::ErrorCode]] = &[
                $($($crate::api::error::$input,)+)?
                &[$($($crate::api::error::ErrorCode::$code),+)?],
            ];
        }
    };
}
pub(crate) use error_set;

/// An operation's error response: an [`ApiError`] documented with the codes of `S`.
pub struct ApiErrors<S>(pub ApiError, PhantomData<fn() -> S>);

impl<S> From<ApiError> for ApiErrors<S> {
    fn from(err: ApiError) -> Self {
        ApiErrors(err, PhantomData)
    }
}

impl<S> From<AuthError> for ApiErrors<S> {
    fn from(err: AuthError) -> Self {
        ApiErrors(err.into(), PhantomData)
    }
}

impl<S> From<ApiErrors<S>> for poem::Error {
    fn from(err: ApiErrors<S>) -> Self {
        err.0.into()
    }
}

impl<S> IntoResponse for ApiErrors<S> {
    fn into_response(self) -> Response {
        self.0.as_response()
    }
}

impl<S: ErrorSet> ApiResponse for ApiErrors<S> {
    fn meta() -> MetaResponses {
        let mut by_status: Vec<(StatusCode, Vec<ErrorCode>)> = Vec::new();
        for &code in S::CODES.iter().copied().flatten().chain(S::ALWAYS) {
            match by_status
                .iter_mut()
                .find(|(status, _)| *status == code.status())
            {
                Some((_, codes)) if !codes.contains(&code) => codes.push(code),
                Some(_) => {}
                None => by_status.push((code.status(), vec![code])),
            }
        }
        by_status.sort_by_key(|(status, _)| *status);
        MetaResponses {
            responses: by_status
                .into_iter()
                .map(|(status, codes)| MetaResponse {
                    description: describe(&codes),
                    status: Some(status.as_u16()),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: example_schema(codes[0]),
                    }],
                    headers: headers_for(status),
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

/// "`invalid_otp`: …; `otp_locked`: …" for one status, interned because OpenAPI metadata
/// wants `'static` text and is built more than once.
fn describe(codes: &[ErrorCode]) -> &'static str {
    static INTERNED: OnceLock<Mutex<HashMap<Vec<ErrorCode>, &'static str>>> = OnceLock::new();
    let mut interned = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    interned.entry(codes.to_vec()).or_insert_with(|| {
        let lines: Vec<String> = codes
            .iter()
            .map(|code| format!("`{}`: {}", code.as_str(), code.message()))
            .collect();
        Box::leak(lines.join("\n\n").into_boxed_str())
    })
}

fn example_schema(code: ErrorCode) -> MetaSchemaRef {
    let example = match code {
        ErrorCode::ValidationFailed => {
            ApiError::validation("email", "Enter a valid email address.")
        }
        ErrorCode::ResendTooSoon | ErrorCode::RateLimited | ErrorCode::Overloaded => {
            ApiError::new(code).with_retry_after(42)
        }
        _ => ApiError::new(code),
    };
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        all_of: vec![ErrorBody::schema_ref()],
        example: example.body.to_json(),
        ..MetaSchema::ANY
    }))
}

fn headers_for(status: StatusCode) -> Vec<MetaHeader> {
    let header = |name: &str, description: &str| MetaHeader {
        name: name.into(),
        description: Some(description.into()),
        required: false,
        deprecated: false,
        schema: String::schema_ref(),
    };
    match status {
        StatusCode::UNAUTHORIZED => vec![header("WWW-Authenticate", "`Bearer`, as RFC 6750 asks.")],
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            vec![header(
                "Retry-After",
                "Seconds to wait before retrying, when known.",
            )]
        }
        _ => vec![],
    }
}
