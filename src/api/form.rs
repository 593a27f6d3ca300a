//! Form-encoded request bodies, as OAuth clients send them (RFC 6749 §6, RFC 7009). The
//! handler gets the parse result rather than an early error, so a malformed form is answered
//! in OAuth's error shape (`invalid_request`), not the service's own.

use std::collections::HashSet;

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use super::{
    error::{ApiError, ErrorCode},
    json::{declared_media_type, media_type, read_body},
};

const FORM: &str = "application/x-www-form-urlencoded";

/// The form, or a sentence saying why it is malformed.
pub struct FormBody<T>(pub Result<T, String>);

impl<T: Type> Payload for FormBody<T> {
    const CONTENT_TYPE: &'static str = FORM;

    fn check_content_type(content_type: &str) -> bool {
        media_type(content_type) == FORM
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: DeserializeOwned + Send> ParsePayload for FormBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read_body(body.take()?).await?;
        Ok(FormBody(parse(&bytes)))
    }
}

/// RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|_| "The body is not a valid form-encoded body.".to_string())?;
    let mut seen = HashSet::new();
    if let Some((name, _)) = pairs.iter().find(|(name, _)| !seen.insert(name)) {
        return Err(format!("{name} is sent more than once."));
    }
    serde_urlencoded::from_bytes(bytes)
        .map_err(|_| "The body is not a valid form-encoded body.".to_string())
}

impl<'a, T: Type + DeserializeOwned + Send> ApiExtractor<'a> for FormBody<T> {
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
                content_type: FORM,
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
        if declared_media_type(request).as_deref() == Some(FORM) {
            <Self as ParsePayload>::from_request(request, body).await
        } else {
            Err(ApiError::new(ErrorCode::UnsupportedMediaType).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::parse;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Grant {
        grant_type: Option<String>,
    }

    #[test]
    fn a_parameter_sent_twice_is_malformed() {
        assert_eq!(
            parse::<Grant>(b"grant_type=refresh_token"),
            Ok(Grant {
                grant_type: Some("refresh_token".into())
            })
        );
        assert_eq!(
            parse::<Grant>(b"grant_type=a&grant_type=b"),
            Err("grant_type is sent more than once.".into())
        );
    }
}
