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

use crate::domain::error::AuthError;

/// Every error code of the contract. Each variant's doc is the status it answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: fields failed validation; `fields` says which and why.
    ValidationFailed,
    /// 400: the body is not valid JSON.
    InvalidJson,
    /// 400: the code is wrong, expired, used or unknown.
    InvalidOtp,
    /// 400: too many wrong guesses burned the code.
    OtpLocked,
    /// 401: missing, malformed, expired or otherwise invalid access token.
    Unauthorized,
    /// 401: wrong email or password.
    InvalidCredentials,
    /// 401: unknown, expired or revoked refresh token.
    InvalidRefreshToken,
    /// 401: a rotated refresh token was replayed; the session is revoked.
    RefreshTokenReused,
    /// 403: the email domain may not register.
    EmailDomainNotAllowed,
    /// 403: the role may not be chosen at registration.
    RoleNotAllowed,
    /// 403: right password, unverified address.
    EmailNotVerified,
    /// 403: the account is disabled.
    AccountDisabled,
    /// 403: a browser on an origin not in `AUTHGATE_CORS_ORIGINS`.
    OriginNotAllowed,
    /// 404: no such route or resource.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: a verified account already uses the email.
    EmailTaken,
    /// 409: the account is already verified.
    AlreadyVerified,
    /// 413: the body is over 64 KiB.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 429: a code was mailed to this address moments ago.
    ResendTooSoon,
    /// 429: over an abuse limit; retry after `retry_after` seconds.
    RateLimited,
    /// 500: a fault of the server's own.
    InternalError,
    /// 503: the mail could not be handed to the mail server.
    MailUnavailable,
    /// 503: too many password hashes waiting; retry shortly.
    Overloaded,
    /// 503: the database cannot be reached.
    Unavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            ValidationFailed | InvalidJson | InvalidOtp | OtpLocked => StatusCode::BAD_REQUEST,
            Unauthorized | InvalidCredentials | InvalidRefreshToken | RefreshTokenReused => {
                StatusCode::UNAUTHORIZED
            }
            EmailDomainNotAllowed | RoleNotAllowed | EmailNotVerified | AccountDisabled => {
                StatusCode::FORBIDDEN
            }
            OriginNotAllowed => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            EmailTaken | AlreadyVerified => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ResendTooSoon | RateLimited => StatusCode::TOO_MANY_REQUESTS,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            MailUnavailable | Overloaded | Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ValidationFailed => "validation_failed",
            InvalidJson => "invalid_json",
            InvalidOtp => "invalid_otp",
            OtpLocked => "otp_locked",
            Unauthorized => "unauthorized",
            InvalidCredentials => "invalid_credentials",
            InvalidRefreshToken => "invalid_refresh_token",
            RefreshTokenReused => "refresh_token_reused",
            EmailDomainNotAllowed => "email_domain_not_allowed",
            RoleNotAllowed => "role_not_allowed",
            EmailNotVerified => "email_not_verified",
            AccountDisabled => "account_disabled",
            OriginNotAllowed => "origin_not_allowed",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            EmailTaken => "email_taken",
            AlreadyVerified => "already_verified",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            ResendTooSoon => "resend_too_soon",
            RateLimited => "rate_limited",
            InternalError => "internal_error",
            MailUnavailable => "mail_unavailable",
            Overloaded => "overloaded",
            Unavailable => "unavailable",
        }
    }

    /// The sentence a person reads in `message`.
    pub fn message(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ValidationFailed => "Some fields are missing or invalid.",
            InvalidJson => "The request body is not valid JSON.",
            InvalidOtp => "The code is wrong, has expired or was already used.",
            OtpLocked => "Too many wrong codes. Ask for a new code.",
            Unauthorized => "Sign in to do this: the access token is missing, invalid or expired.",
            InvalidCredentials => "The email or password is wrong.",
            InvalidRefreshToken => {
                "The refresh token is unknown, expired or revoked. Sign in again."
            }
            RefreshTokenReused => {
                "This refresh token was already used. The session was ended for safety; sign in again."
            }
            EmailDomainNotAllowed => "Addresses of this email domain cannot register.",
            RoleNotAllowed => "This role cannot be chosen at registration.",
            EmailNotVerified => "Verify your email address first: we sent you a code.",
            AccountDisabled => "This account is disabled.",
            OriginNotAllowed => "This origin may not call the API from a browser.",
            NotFound => "There is nothing here.",
            MethodNotAllowed => "This method is not allowed here.",
            EmailTaken => "An account with this email already exists.",
            AlreadyVerified => "This account is already verified. Sign in.",
            PayloadTooLarge => "The request body is larger than 64 KiB.",
            UnsupportedMediaType => "Send the request body as application/json.",
            ResendTooSoon => "A code was sent moments ago. Wait before asking for another.",
            RateLimited => "Too many attempts. Wait before trying again.",
            InternalError => "Something went wrong on our side.",
            MailUnavailable => "The mail could not be sent right now. Try again shortly.",
            Overloaded => "The service is busy. Try again in a moment.",
            Unavailable => "The service is temporarily unavailable.",
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct ErrorBody {
    /// Stable, snake_case error code to branch on.
    pub error: String,
    /// A sentence for a person.
    pub message: String,
    /// Only with `validation_failed`: the problems of each field.
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
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        ApiError::validation("email", "Enter a valid email address.").body
    }
}

/// An error on its way to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} {}", self.code.status(), self.code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    body: ErrorBody,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            body: ErrorBody {
                error: code.as_str().into(),
                message: code.message().into(),
                fields: None,
                retry_after: None,
                can_resend_otp: (code == ErrorCode::EmailNotVerified).then_some(true),
            },
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
        match err {
            AuthError::Validation(fields) => {
                ApiError::new(ErrorCode::ValidationFailed).with_fields(fields.into_map())
            }
            AuthError::EmailDomainNotAllowed => ApiError::new(ErrorCode::EmailDomainNotAllowed),
            AuthError::RoleNotAllowed => ApiError::new(ErrorCode::RoleNotAllowed),
            AuthError::EmailTaken => ApiError::new(ErrorCode::EmailTaken),
            AuthError::InvalidOtp => ApiError::new(ErrorCode::InvalidOtp),
            AuthError::OtpLocked => ApiError::new(ErrorCode::OtpLocked),
            AuthError::AlreadyVerified => ApiError::new(ErrorCode::AlreadyVerified),
            AuthError::ResendTooSoon {
                retry_after_seconds,
            } => ApiError::new(ErrorCode::ResendTooSoon).with_retry_after(retry_after_seconds),
            AuthError::RateLimited {
                retry_after_seconds,
                ..
            } => ApiError::new(ErrorCode::RateLimited).with_retry_after(retry_after_seconds),
            AuthError::MailUnavailable => ApiError::new(ErrorCode::MailUnavailable),
            AuthError::InvalidCredentials => ApiError::new(ErrorCode::InvalidCredentials),
            AuthError::EmailNotVerified => ApiError::new(ErrorCode::EmailNotVerified),
            AuthError::AccountDisabled => ApiError::new(ErrorCode::AccountDisabled),
            AuthError::InvalidRefreshToken => ApiError::new(ErrorCode::InvalidRefreshToken),
            AuthError::RefreshTokenReused => ApiError::new(ErrorCode::RefreshTokenReused),
            AuthError::Unauthorized => ApiError::new(ErrorCode::Unauthorized),
            AuthError::NotFound => ApiError::new(ErrorCode::NotFound),
            AuthError::Overloaded {
                retry_after_seconds,
            } => ApiError::new(ErrorCode::Overloaded).with_retry_after(retry_after_seconds),
            AuthError::Unavailable(err) => {
                tracing::error!(error = %err, "database unreachable");
                ApiError::new(ErrorCode::Unavailable).with_retry_after(5)
            }
            AuthError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::new(ErrorCode::InternalError)
            }
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
    const CODES: &'static [ErrorCode];
}

/// Declares an [`ErrorSet`]: `error_set!(LoginErrors: InvalidCredentials, ...)`.
macro_rules! error_set {
    ($name:ident: $($code:ident),+ $(,)?) => {
        pub struct $name;
        impl $crate::api::error::ErrorSet for $name {
            const CODES: &'static [$crate::api::error::ErrorCode] =
                &[$($crate::api::error::ErrorCode::$code),+];
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

/// Errors any operation may answer with, on top of its own.
const ALWAYS: &[ErrorCode] = &[ErrorCode::InternalError, ErrorCode::Unavailable];

impl<S: ErrorSet> ApiResponse for ApiErrors<S> {
    fn meta() -> MetaResponses {
        let mut by_status: Vec<(StatusCode, Vec<ErrorCode>)> = Vec::new();
        for &code in S::CODES.iter().chain(ALWAYS) {
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
