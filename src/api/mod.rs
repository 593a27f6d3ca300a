//! The HTTP layer: poem-openapi operations (one file per tag, thin), the error mapping, and
//! the middleware every response passes through.

pub mod account;
pub mod admin_audit;
pub mod admin_lifecycle;
pub mod admin_stats;
pub mod admin_users;
pub mod auth;
pub mod avatars;
mod console;
pub mod email_change;
pub mod error;
mod examples;
pub mod form;
pub mod json;
pub mod keys;
pub mod me;
pub mod models;
pub mod my_data;
pub mod oauth;
pub mod password_reset;
pub mod registration;
pub mod service;
pub mod sessions;
mod swagger_ui;
pub mod tokens;
pub mod two_factor;

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Cors,
};
use poem_openapi::{OpenApiService, Tags};
use uuid::Uuid;

use crate::{app::AppState, store::account_changes, telemetry::metrics};
use error::{ApiError, ErrorCode};

#[derive(Tags)]
pub enum ApiTags {
    /// Register, verify the address with the mailed code, resend codes.
    Registration,
    /// Sign in, refresh and sign out.
    Tokens,
    /// Forgotten passwords.
    PasswordReset,
    /// The signed-in user.
    Me,
    /// The account over its life: username, address, picture, deletion, your data.
    Account,
    /// The signed-in user's devices.
    Sessions,
    /// Two-factor sign-in: authenticator apps, codes by mail, recovery codes, trusted
    /// devices.
    TwoFactor,
    /// Managing accounts: for users holding the `admin` role.
    Admin,
    /// Keys and discovery for services that verify our tokens offline.
    Keys,
    /// Health, readiness and public settings.
    Service,
}

/// Every operation group, in the order of [`TAG_ORDER`] (nested: tuples implement what the
/// service needs only up to twelve members).
type Apis = (
    (
        registration::RegistrationApi,
        tokens::TokensApi,
        oauth::OAuthApi,
        password_reset::PasswordResetApi,
    ),
    (
        me::MeApi,
        account::AccountApi,
        avatars::AvatarsApi,
        email_change::EmailChangeApi,
        my_data::MyDataApi,
    ),
    (sessions::SessionsApi, two_factor::TwoFactorApi),
    AdminApis,
    (keys::KeysApi, service::ServiceApi),
);

/// Tuples of APIs stop at twelve: the admin's go in one.
type AdminApis = (
    admin_users::AdminUsersApi,
    admin_lifecycle::AdminLifecycleApi,
    admin_audit::AdminAuditApi,
    admin_stats::AdminStatsApi,
);

const DESCRIPTION: &str = "\
Stateless JWT authentication with email one-time codes.

**Flow.** `POST /auth/register` mails a 6-digit code; `POST /auth/verify-otp` with it \
verifies the address and signs in. Later, `POST /auth/login`. Use the `access` token as \
`Authorization: Bearer …` (the *Authorize* button above) and exchange the `refresh` token at \
`POST /auth/token/refresh` before the access token expires. Forgot your password? \
`POST /auth/forgot-password`, then `POST /auth/reset-password` with the mailed code.

**Errors** all look like `{\"error\": \"<code>\", \"message\": \"…\", \"fields\": {…}}`; \
`fields` comes only with `validation_failed`. Every operation lists its codes. Responses \
carry `X-Request-Id` (yours, if you sent one).

**Tokens.** Access tokens are JWTs (`typ: at+jwt`) signed with the key named by `kid`; verify \
them offline with `/.well-known/jwks.json`.";

/// The OpenAPI service. Its one server is `/`, so Swagger UI calls the origin it was loaded
/// from, whatever host name reached it (`localhost` or `127.0.0.1`, behind a proxy or not).
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(Apis::default(), "authgate", env!("CARGO_PKG_VERSION"))
        .description(DESCRIPTION)
        .server("/")
}

/// The OpenAPI document as served and checked in, and the Swagger UI page showing it. The
/// tags come in the order a newcomer walks the flows ([`TAG_ORDER`]) rather than poem-openapi's
/// alphabetical one, and Swagger UI follows the document's order.
pub fn document_and_ui() -> (String, String) {
    let service = openapi();
    let spec = service.spec();
    // The page embeds the document verbatim; it gets the reordered one.
    let page = service.swagger_ui_html();
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(&spec) else {
        return (spec, page);
    };
    let order: Vec<&str> = TAG_ORDER.iter().map(Tags::name).collect();
    if let Some(tags) = document
        .get_mut("tags")
        .and_then(serde_json::Value::as_array_mut)
    {
        tags.sort_by_key(|tag| {
            let name = tag["name"].as_str().unwrap_or_default();
            order
                .iter()
                .position(|known| *known == name)
                .unwrap_or(usize::MAX)
        });
    }
    let reordered = serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.clone());
    let page = page.replace(&spec, &reordered);
    (reordered, page)
}

/// Every tag, in the order the document lists them.
const TAG_ORDER: [ApiTags; 10] = [
    ApiTags::Registration,
    ApiTags::Tokens,
    ApiTags::PasswordReset,
    ApiTags::Me,
    ApiTags::Account,
    ApiTags::Sessions,
    ApiTags::TwoFactor,
    ApiTags::Admin,
    ApiTags::Keys,
    ApiTags::Service,
];

/// The whole HTTP surface: API, Swagger UI at `/`, the document at `/openapi.json`, the
/// admin console under `/admin/`.
pub fn endpoint(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let service = openapi();
    let (document, swagger_ui) = document_and_ui();
    let route_names = Arc::new(RouteNames::from_document(&document));
    let routes = Route::new()
        .nest("/", service)
        .at(
            "/openapi.json",
            get(fixed("application/json; charset=utf-8", document)),
        )
        .at(console::BARE_ROUTE, get(console::redirect()))
        .at(console::PAGE_ROUTE, get(console::page()))
        .at(console::ASSET_ROUTE, get(console::assets()));
    let surface = Surface {
        swagger_ui: get(swagger_ui::page(swagger_ui)),
        routes,
    };
    let surface = if state.config.cors_origins.is_empty() {
        surface.boxed()
    } else {
        surface
            .with(cors(&state.config.cors_origins, &state.config.public_url))
            .boxed()
    };
    let context = Arc::new(RequestContext {
        state: Arc::clone(&state),
        route_names,
    });
    surface.data(state).around(move |inner, request| {
        let context = Arc::clone(&context);
        async move { Ok(respond(inner, request, &context).await) }
    })
}

/// Prometheus metrics, for the metrics listener (`AUTHGATE_METRICS_LISTEN`): requests by
/// route, method and status with latency histograms; logins by outcome; mails sent and failed
/// by kind; refresh reuse detections; rate-limit refusals; password hashes waiting and in
/// progress.
pub fn metrics_endpoint(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    Route::new().at(
        "/metrics",
        get(poem::endpoint::make_sync(move |_| {
            Response::builder()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(metrics::render(state.health.hashing_load()))
        })),
    )
}

/// Browsers on these origins may call the API, with the bearer token in `Authorization`. The
/// service's own origin is always admitted: browsers send `Origin` on same-origin POSTs too,
/// and Swagger UI must keep working.
fn cors(origins: &[String], public_url: &str) -> Cors {
    let own_origin = origin_of(public_url);
    Cors::new()
        .allow_origins(
            origins
                .iter()
                .map(String::as_str)
                .chain([own_origin.as_str()]),
        )
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(["authorization", "content-type", "x-request-id"])
        .expose_headers(["x-request-id", "retry-after"])
        .max_age(600)
}

/// The origin (`scheme://host[:port]`) of a URL such as `AUTHGATE_PUBLIC_URL`.
fn origin_of(url: &str) -> String {
    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

/// What the middleware needs besides the request.
struct RequestContext {
    state: Arc<AppState>,
    route_names: Arc<RouteNames>,
}

/// Route templates (`/auth/sessions/{id}`) for metric labels and logs: raw paths would give
/// every session id its own time series. Split into segments once, at start-up.
struct RouteNames(Vec<RouteName>);

struct RouteName {
    template: String,
    /// Each segment of the template; `None` for a parameter, which matches any segment.
    segments: Vec<Option<String>>,
}

impl RouteNames {
    fn from_document(document: &str) -> RouteNames {
        let paths: Vec<String> = serde_json::from_str::<serde_json::Value>(document)
            .ok()
            .and_then(|document| {
                document["paths"]
                    .as_object()
                    .map(|paths| paths.keys().cloned().collect())
            })
            .unwrap_or_default();
        let served_beside = [
            "/",
            "/openapi.json",
            console::BARE_ROUTE,
            console::PAGE_ROUTE,
            console::ASSET_ROUTE_NAME,
        ]
        .map(str::to_string)
        .to_vec();
        let templates = [served_beside, paths].concat();
        RouteNames(
            templates
                .into_iter()
                .map(|template| RouteName {
                    segments: template
                        .split('/')
                        .map(|part| {
                            let parameter = part.starts_with('{') && part.ends_with('}');
                            (!parameter).then(|| part.to_string())
                        })
                        .collect(),
                    template,
                })
                .collect(),
        )
    }

    fn name(&self, path: &str) -> &str {
        let length = path.split('/').count();
        self.0
            .iter()
            .find(|route| {
                route.segments.len() == length
                    && route
                        .segments
                        .iter()
                        .zip(path.split('/'))
                        .all(|(part, segment)| part.as_deref().is_none_or(|part| part == segment))
            })
            .map_or("unmatched", |route| route.template.as_str())
    }
}

/// Nesting the API at "/" claims "/" itself, so the Swagger UI is picked out first.
struct Surface<U, R> {
    swagger_ui: U,
    routes: R,
}

impl<U: Endpoint, R: Endpoint> Endpoint for Surface<U, R> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        if request.uri().path() == "/" {
            self.swagger_ui
                .call(request)
                .await
                .map(IntoResponse::into_response)
        } else {
            self.routes
                .call(request)
                .await
                .map(IntoResponse::into_response)
        }
    }
}

/// Serves a fixed document, built once at start-up.
fn fixed(content_type: &'static str, body: String) -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .body(body.clone())
    })
}

/// The longest `X-Request-Id` taken from a client; longer or odd ones are replaced.
const MAX_REQUEST_ID_LENGTH: usize = 128;

/// What every request goes through: body size limit, error shape, request id, security
/// headers and the access log line.
async fn respond<E: Endpoint>(
    inner: Arc<E>,
    mut request: Request,
    context: &RequestContext,
) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LENGTH
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_string);
    let method = request.method().clone();
    let route = context.route_names.name(request.uri().path()).to_string();
    // Worked out once here; handlers take it as `Data<&ClientInfo>`.
    let client = models::client_info(&request, &context.state.config.trusted_proxies);
    let client_ip = client.ip.clone();
    request.extensions_mut().insert(client);

    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    // Picture uploads are the one body that is not JSON, with a limit of their own.
    let config = &context.state.config;
    let upload = method == Method::PUT && route == avatars::UPLOAD_ROUTE;
    let limit = if upload {
        avatars::body_limit(config)
    } else {
        json::MAX_BODY_BYTES
    };
    let mut response = if declared_length.is_some_and(|length| length > limit) {
        let refusal = if upload {
            avatars::too_large(config)
        } else {
            ApiError::new(ErrorCode::PayloadTooLarge)
        };
        refusal.into_response()
    } else {
        // The accounts this request wrote are forgotten before it is answered, so whatever
        // the caller sends next reads them as they are now.
        let (output, changed_accounts) = account_changes::collect(inner.call(request)).await;
        context.state.accounts.forget(&changed_accounts);
        match output {
            Ok(output) => output.into_response(),
            Err(err) => ApiError::from_poem(err).into_response(),
        }
    };
    // A body refused unread, or read only in part, is still on the wire, so the connection
    // cannot carry another request; saying so keeps clients from reusing it. That is every
    // 413, and an upload refused before its body was read (a JSON body that small has
    // arrived whole by then).
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE
        || (upload
            && matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::UNSUPPORTED_MEDIA_TYPE
            ))
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Auth responses are personal and often carry tokens: nothing is cached unless an
    // operation says otherwise (the JWKS does).
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // With CORS on, whether `Access-Control-Allow-Origin` is sent depends on `Origin`: a
    // shared cache must key on it, or it replays one origin's answer (the JWKS is
    // `Cache-Control: public`) to another, or an answer without the header to an allowed one.
    if !context.state.config.cors_origins.is_empty() {
        vary_on_origin(headers);
    }
    let latency = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    // Made-up methods would each add a time series on a public endpoint.
    let method_label = match method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "other",
    };
    metrics::observe_request(&route, method_label, status, latency);
    tracing::info!(
        target: "authgate::access",
        %method,
        route,
        status,
        latency_ms = latency * 1000.0,
        request_id,
        client_ip = client_ip.unwrap_or_default(),
        "request"
    );
    response
}

/// Adds `Origin` to `Vary`, merged into one value with what is already there.
fn vary_on_origin(headers: &mut HeaderMap) {
    let mut names: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if names
        .iter()
        .any(|name| name == "*" || name.eq_ignore_ascii_case("origin"))
    {
        return;
    }
    names.push("Origin".into());
    if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
        headers.insert(header::VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary_after(existing: &[&'static str]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for value in existing {
            headers.append(header::VARY, HeaderValue::from_static(value));
        }
        vary_on_origin(&mut headers);
        headers
            .get_all(header::VARY)
            .iter()
            .map(|value| value.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn origin_is_merged_into_vary() {
        assert_eq!(vary_after(&[]), ["Origin"]);
        assert_eq!(
            vary_after(&["Accept-Encoding", "Accept"]),
            ["Accept-Encoding, Accept, Origin"]
        );
        assert_eq!(vary_after(&["accept, origin"]), ["accept, origin"]);
        assert_eq!(vary_after(&["*"]), ["*"]);
    }
}
