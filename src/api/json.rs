//! JSON request bodies that fail in the contract's shape.
//!
//! poem-openapi's own `Json<T>` reports parse failures as free text without naming the field.
//! `JsonBody<T>` keeps the OpenAPI schema of `T` but parses with serde, tracking the path to a
//! bad value, so `{"email": 5}` answers `fields.email: ["Must be a string."]`.

use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;

use super::error::{ApiError, ErrorCode};

/// Bodies larger than this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read_body(body.take()?).await?;
        parse(&bytes).map(JsonBody).map_err(Into::into)
    }
}

/// A body's bytes, up to [`MAX_BODY_BYTES`].
pub async fn read_body(body: poem::Body) -> Result<Vec<u8>, ApiError> {
    read_limited(body, MAX_BODY_BYTES)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => ApiError::new(ErrorCode::PayloadTooLarge),
            BodyError::Unreadable => ApiError::new(ErrorCode::InvalidJson)
                .with_message("The request body could not be read."),
        })
}

/// How much of an oversized body is read and thrown away before answering 413, so a client
/// still streaming it reads the answer instead of a reset connection. Beyond this the
/// connection is simply closed.
const DRAIN_LIMIT_BYTES: u64 = 1024 * 1024;

/// Why a body could not be read whole.
pub enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// The connection failed while the body was being sent.
    Unreadable,
}

/// Reads at most `limit` bytes. The limit holds while reading, so a chunked body, which
/// declares no length, is cut off too.
pub async fn read_limited(body: poem::Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut reader = body.into_async_read();
    let mut bytes = Vec::new();
    (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|_| BodyError::Unreadable)?;
    if bytes.len() > limit {
        drain(reader).await;
        return Err(BodyError::TooLarge);
    }
    Ok(bytes)
}

/// Reads and throws away what is left of a refused body, up to [`DRAIN_LIMIT_BYTES`].
pub async fn drain(body: impl tokio::io::AsyncRead + Unpin) {
    let _ = tokio::io::copy(&mut body.take(DRAIN_LIMIT_BYTES), &mut tokio::io::sink()).await;
}

/// Parses a body as `T`, mapping serde's complaints to field errors.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // First as any JSON value: a syntax error is `invalid_json`, a shape error is a field's.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::new(ErrorCode::InvalidJson))?;
    if !value.is_object() {
        return Err(ApiError::validation("body", "Must be a JSON object."));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::validation(&field, &describe(err.inner()))
    })
}

/// A person-readable sentence for a serde error, without library wording.
fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let expected = text
        .split_once(", expected ")
        .map(|(_, expected)| expected.split(" at line").next().unwrap_or(expected).trim());
    match expected {
        // Rust type names ("struct UpdateProfile", "variant identifier") mean nothing to a
        // client: say what JSON is wanted instead.
        Some(expected) if text.starts_with("invalid type") && expected.starts_with("struct ") => {
            "Must be an object.".into()
        }
        // An enum of names is "string or map" to serde (a variant may carry data).
        Some(expected) if expected.contains("variant") || expected == "string or map" => {
            "Must be one of the documented values.".into()
        }
        Some(expected) if text.starts_with("invalid type") => {
            let mut sentence = format!("Must be {expected}.");
            if let Some(first) = sentence.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            sentence
        }
        _ if text.starts_with("unknown variant") => "Must be one of the documented values.".into(),
        _ => "Has an invalid value.".into(),
    }
}

/// The media type of a `Content-Type` value, without its parameters, lowercased.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(content_type: &str) -> bool {
    let essence = media_type(content_type);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<'a, T: Type + DeserializeOwned + Send> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // Only a declared JSON body is read, a missing content type included: a browser sends
        // a cross-site form or `text/plain` POST (or one with no content type) without a CORS
        // preflight, so parsing such a body would let any web page drive the API.
        if declares_json(request) {
            <Self as ParsePayload>::from_request(request, body).await
        } else {
            Err(ApiError::new(ErrorCode::UnsupportedMediaType).into())
        }
    }
}

fn declares_json(request: &Request) -> bool {
    declared_media_type(request).is_some_and(|media_type| is_json(&media_type))
}

/// The media type the request declares for its body (lowercased, without parameters).
pub fn declared_media_type(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(media_type)
}

/// A JSON body the client may leave out (`None` when the request has none), for operations
/// whose fields are all optional. A body that is sent is held to the rules of [`JsonBody`]:
/// declared JSON, at most [`MAX_BODY_BYTES`], the shape of `T`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<'a, T: Type + DeserializeOwned + Send> ApiExtractor<'a> for OptionalJsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <JsonBody<T> as Payload>::CONTENT_TYPE,
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_body(body.take()?).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        // As for `JsonBody`: what a browser may send cross-site without a preflight is not read.
        if !declares_json(request) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType).into());
        }
        Ok(OptionalJsonBody(Some(parse(&bytes)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        #[serde(default)]
        remember: Option<bool>,
    }

    fn field_problem(body: &str) -> (String, String) {
        let err = parse::<Login>(body.as_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        let (field, problems) = err
            .body()
            .fields
            .clone()
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        (field, problems[0].clone())
    }

    #[test]
    fn wrong_types_name_the_field() {
        assert_eq!(
            field_problem(r#"{"email": 5}"#),
            ("email".into(), "Must be a string.".into())
        );
        assert_eq!(
            field_problem(r#"{"email": "a", "remember": "yes"}"#),
            ("remember".into(), "Must be a boolean.".into())
        );
        assert_eq!(field_problem(r#"[1, 2]"#).0, "body");
    }

    #[test]
    fn bad_syntax_is_invalid_json() {
        for body in ["", "{", "{\"email\": }", "nul"] {
            assert_eq!(
                parse::<Login>(body.as_bytes()).unwrap_err().code,
                ErrorCode::InvalidJson
            );
        }
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
