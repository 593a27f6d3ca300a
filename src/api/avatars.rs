//! Profile pictures: upload and remove your own, and the public address that serves them.
//!
//! Uploads are the one body that is not JSON: the image itself, or the `file` part of a
//! multipart form (what an HTML file input sends). Their limit is `AUTHGATE_AVATAR_MAX_BYTES`,
//! held while reading, instead of the 64 KiB of JSON bodies.

use std::sync::Arc;

use poem::{
    Body, FromRequest, IntoResponse, Request, RequestBody, Response,
    http::{StatusCode, header},
    web::{Data, Multipart},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
    registry::{
        MetaHeader, MetaMediaType, MetaRequest, MetaResponse, MetaResponses, MetaSchema,
        MetaSchemaRef, Registry,
    },
    types::Type,
};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiError, ApiErrors, ErrorCode, error_set},
    json::{BodyError, declared_media_type, drain, read_limited},
};
use crate::{
    app::AppState,
    config::Config,
    domain::{Account, AuthError, ClientInfo},
    flows::avatars::StoredPicture,
};

/// The upload's route, as the OpenAPI document (and so the middleware) names it.
pub const UPLOAD_ROUTE: &str = "/auth/me/avatar";

/// The content types a picture may be sent as, besides multipart. Which of them it really is
/// comes from its bytes: the declared type only says "this is a picture".
const IMAGE_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/webp"];

/// Room in a multipart body, on top of the picture, for boundaries, part headers and small
/// other fields a form may carry.
const MULTIPART_ENVELOPE_BYTES: usize = 16 * 1024;

/// How long a client or shared cache may keep a picture without asking again. Versioned URLs
/// (`?v=`) already make a new picture show at once; this bounds how long a removed one lingers.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// The longest body an upload may declare: a picture of the largest size, in a multipart
/// envelope. The middleware refuses longer declared bodies unread.
pub fn body_limit(config: &Config) -> usize {
    config.avatar_max_bytes + MULTIPART_ENVELOPE_BYTES
}

/// The refusal of a picture over `AUTHGATE_AVATAR_MAX_BYTES`, naming the limit.
pub fn too_large(config: &Config) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge).with_message(format!(
        "The picture is larger than {}.",
        bytesize::ByteSize::b(config.avatar_max_bytes as u64)
            .display()
            .iec()
    ))
}

#[derive(Default)]
pub struct AvatarsApi;

#[derive(ApiResponse)]
pub enum AvatarResponse {
    /// The signed-in user; `profile.avatar_url` is the picture's address, or null.
    #[oai(status = 200)]
    Ok(Json<Account>),
}

error_set!(UploadErrors[BEARER]: InvalidImage, ValidationFailed, PayloadTooLarge, UnsupportedMediaType, Overloaded);
error_set!(RemoveErrors[BEARER]);
error_set!(PictureErrors: NotFound);

#[OpenApi(tag = "ApiTags::Account")]
impl AvatarsApi {
    /// Upload your profile picture
    ///
    /// Send the image itself as the body, with `Content-Type` `image/png`, `image/jpeg` or
    /// `image/webp`, or a `multipart/form-data` form with the image as its `file` part. The
    /// format is read from the bytes, whatever type or file name was declared; only PNG, JPEG
    /// and WebP of at most 4096×4096 pixels are taken (400 `invalid_image`, also for a file
    /// that claims more pixels than it could hold). The centred square is cut out and
    /// re-encoded at 256×256 pixels, so no EXIF (location, camera) or other metadata survives,
    /// and stored: `profile.avatar_url` becomes
    /// `{AUTHGATE_PUBLIC_URL}/avatars/{user_id}?v=…`, a new URL for each new picture.
    ///
    /// The limit is `AUTHGATE_AVATAR_MAX_BYTES` (default 5 MiB) for the picture, plus 16 KiB
    /// of multipart envelope (413 `payload_too_large`). Any other content type is 415
    /// `unsupported_media_type`; a form without a `file` part is 400 `validation_failed`
    /// under `fields.file`. When too many pictures are being processed the answer is 503
    /// `overloaded` with `Retry-After`. Recorded as `avatar_changed`.
    #[oai(path = "/auth/me/avatar", method = "put")]
    async fn upload(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        upload: PictureUpload,
    ) -> Result<AvatarResponse, ApiErrors<UploadErrors>> {
        let account = state
            .avatars
            .upload(&auth.0.account, upload.0, client.0)
            .await?;
        Ok(AvatarResponse::Ok(Json(account)))
    }

    /// Remove your profile picture
    ///
    /// Deletes the uploaded picture and sets `profile.avatar_url` to null (a URL set with
    /// `PATCH /auth/me` is cleared too). Removing when there is no picture is not an error.
    /// Recorded as `avatar_changed` when something was removed.
    #[oai(path = "/auth/me/avatar", method = "delete")]
    async fn remove(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
    ) -> Result<AvatarResponse, ApiErrors<RemoveErrors>> {
        let account = state.avatars.remove(&auth.0.account, client.0).await?;
        Ok(AvatarResponse::Ok(Json(account)))
    }

    /// A user's profile picture
    ///
    /// Public, like the picture on a profile page: no token needed. A 256×256 JPEG, or PNG
    /// when it has see-through pixels. Cacheable by browsers and shared caches for an hour;
    /// send the `ETag` back as `If-None-Match` to get 304 when it has not changed. 404
    /// `not_found` for an unknown or malformed id and for a user without an uploaded picture.
    #[oai(path = "/avatars/:user_id", method = "get")]
    async fn picture(
        &self,
        state: Data<&Arc<AppState>>,
        /// The user's id (a UUID).
        user_id: Path<String>,
        /// The version in `profile.avatar_url`. Any value serves the current picture: it only
        /// gives each picture a URL of its own for caches.
        #[oai(name = "v")]
        _version: Query<Option<String>>,
        /// ETags of a copy you hold; 304 when one is the current picture's.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> Result<PictureResponse, ApiErrors<PictureErrors>> {
        let user_id = Uuid::parse_str(&user_id.0).map_err(|_| AuthError::NotFound)?;
        let picture = state
            .avatars
            .picture(user_id)
            .await?
            .ok_or(AuthError::NotFound)?;
        if if_none_match
            .0
            .is_some_and(|held| etag_matches(&held, &picture.etag))
        {
            Ok(PictureResponse::NotModified(picture.etag))
        } else {
            Ok(PictureResponse::Picture(picture))
        }
    }
}

/// `If-None-Match` against an ETag: `*`, or any listed tag equal to it under the weak
/// comparison HTTP prescribes for this header (RFC 9110 §13.1.2).
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|held| held == "*" || held.strip_prefix("W/").unwrap_or(held) == etag)
}

/// The picture of a user, or word that the copy the client holds is current.
pub enum PictureResponse {
    Picture(StoredPicture),
    NotModified(String),
}

impl IntoResponse for PictureResponse {
    fn into_response(self) -> Response {
        let (builder, etag, body) = match self {
            PictureResponse::Picture(picture) => (
                Response::builder().content_type(picture.content_type),
                picture.etag,
                Body::from_vec(picture.bytes),
            ),
            PictureResponse::NotModified(etag) => (
                Response::builder().status(StatusCode::NOT_MODIFIED),
                etag,
                Body::empty(),
            ),
        };
        builder
            .header(header::ETAG, etag)
            .header(header::CACHE_CONTROL, CACHE_CONTROL)
            // Apps on other origins show these pictures, also from pages that require
            // resources to opt in to being embedded (COEP).
            .header("cross-origin-resource-policy", "cross-origin")
            .body(body)
    }
}

/// By hand, because the derive gives a status one content type: a picture is JPEG or PNG.
impl ApiResponse for PictureResponse {
    fn meta() -> MetaResponses {
        let headers = || {
            vec![
                response_header("ETag", "Strong; send it back as `If-None-Match`."),
                response_header("Cache-Control", &format!("`{CACHE_CONTROL}`.")),
            ]
        };
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The picture, 256×256 pixels.",
                    status: Some(200),
                    status_range: None,
                    content: ["image/jpeg", "image/png"]
                        .into_iter()
                        .map(|content_type| MetaMediaType {
                            content_type,
                            schema: binary(),
                        })
                        .collect(),
                    headers: headers(),
                },
                MetaResponse {
                    description: "The copy named in `If-None-Match` is current.",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: headers(),
                },
            ],
        }
    }

    fn register(_registry: &mut Registry) {}
}

fn response_header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.into(),
        description: Some(description.into()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

fn binary() -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")))
}

/// The bytes of an uploaded picture, from the body itself or from a form's `file` part,
/// refused past `AUTHGATE_AVATAR_MAX_BYTES` while still being read.
pub struct PictureUpload(pub Vec<u8>);

impl<'a> ApiExtractor<'a> for PictureUpload {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        let form = MetaSchema {
            required: vec!["file"],
            properties: vec![("file", binary())],
            ..MetaSchema::new("object")
        };
        let mut content: Vec<MetaMediaType> = IMAGE_TYPES
            .into_iter()
            .map(|content_type| MetaMediaType {
                content_type,
                schema: binary(),
            })
            .collect();
        content.push(MetaMediaType {
            content_type: "multipart/form-data",
            schema: MetaSchemaRef::Inline(Box::new(form)),
        });
        Some(MetaRequest {
            description: Some("The picture itself, or a form with the picture as its `file` part."),
            content,
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = request
            .data::<Arc<AppState>>()
            .ok_or_else(|| ApiError::new(ErrorCode::InternalError))?;
        let config = &state.config;
        let declared = declared_media_type(request).unwrap_or_default();
        let picture = if IMAGE_TYPES.contains(&declared.as_str()) {
            read_limited(body.take()?, config.avatar_max_bytes)
                .await
                .map_err(|err| refusal(err, config))?
        } else if declared == "multipart/form-data" {
            file_part(request, body, config).await?
        } else {
            drain(body.take()?.into_async_read()).await;
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType)
                .with_message(
                    "Send the picture as image/png, image/jpeg or image/webp, or as the `file` \
                     part of multipart/form-data.",
                )
                .into());
        };
        Ok(PictureUpload(picture))
    }
}

fn refusal(err: BodyError, config: &Config) -> ApiError {
    match err {
        BodyError::TooLarge => too_large(config),
        BodyError::Unreadable => {
            ApiError::validation("body", "The request body could not be read.")
        }
    }
}

/// The `file` part of a multipart form. The whole form is read first, within its limit,
/// so that parsing it cannot wait on, or be flooded by, the client.
async fn file_part(
    request: &Request,
    body: &mut RequestBody,
    config: &Config,
) -> Result<Vec<u8>, ApiError> {
    let form = body.take().map_err(|err| ApiError::from_poem(err.into()))?;
    let form = read_limited(form, body_limit(config))
        .await
        .map_err(|err| refusal(err, config))?;
    let mut buffered = RequestBody::new(Body::from_vec(form));
    let mut form = <Multipart as FromRequest>::from_request(request, &mut buffered)
        .await
        .map_err(unreadable)?;
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        if field.name() == Some("file") {
            let picture = field.bytes().await.map_err(unreadable)?;
            if picture.len() > config.avatar_max_bytes {
                return Err(too_large(config));
            }
            return Ok(picture);
        }
    }
    Err(ApiError::validation(
        "file",
        "Send the picture as the form's `file` part.",
    ))
}

/// A form multer cannot parse (no boundary, a cut-off part, …); what exactly is for no one.
fn unreadable<E>(_: E) -> ApiError {
    ApiError::validation("body", "The multipart form could not be read.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let etag = "\"0123abcd\"";
        assert!(etag_matches("\"0123abcd\"", etag));
        assert!(etag_matches("W/\"0123abcd\"", etag));
        assert!(etag_matches("\"other\", \"0123abcd\"", etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches("\"other\"", etag));
        assert!(!etag_matches("0123abcd", etag));
        assert!(!etag_matches("", etag));
    }
}
