//! Profile pictures (§10 "Pictures", and the avatar rows of "Self-service").

use std::{
    io::Cursor,
    time::{Duration, Instant},
};

use image::{DynamicImage, GenericImageView as _, ImageFormat, Rgb, RgbImage};
use reqwest::{Method, header::HeaderMap};
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, Reply, TestApp};

const RED: Rgb<u8> = Rgb([220, 30, 30]);
const GREEN: Rgb<u8> = Rgb([30, 200, 30]);

/// `image` encoded as `format`.
fn encoded(image: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.into().write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// A 640×480 picture, red but for its green centre square (shaded, as a photo is: JPEG
/// does not keep it exactly).
fn photo() -> RgbImage {
    RgbImage::from_fn(640, 480, |x, y| {
        if (80..560).contains(&x) {
            Rgb([GREEN[0], GREEN[1], (x + y) as u8 / 4])
        } else {
            RED
        }
    })
}

/// A picture that compresses badly: well over 64 KiB as PNG.
fn noise(side: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let image = RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        Rgb([r, g, b])
    });
    encoded(image, ImageFormat::Png)
}

/// `jpeg` with an EXIF segment naming a camera, which must not survive.
fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    // Make: ASCII, 10 bytes, stored after the IFD (8 + 2 + 12 + 4 = 26).
    tiff.extend_from_slice(&[0x01, 0x0F, 0, 2, 0, 0, 0, 10, 0, 0, 0, 26]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    tiff.extend_from_slice(b"SecretCam\0");
    let payload = [b"Exif\0\0".as_slice(), &tiff].concat();
    let length = u16::try_from(payload.len() + 2).unwrap().to_be_bytes();
    [&jpeg[..2], &[0xFF, 0xE1], &length, &payload, &jpeg[2..]].concat()
}

/// A 1×1 GIF.
fn gif() -> Vec<u8> {
    [
        b"GIF89a\x01\0\x01\0\x80\0\0".as_slice(),
        &[0, 0, 0, 255, 255, 255],
        b"\x2c\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0\x3b",
    ]
    .concat()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let length = u32::try_from(data.len()).unwrap().to_be_bytes();
    let crc = crc32(&[kind.as_slice(), data].concat()).to_be_bytes();
    [&length[..], kind, data, &crc].concat()
}

/// A PNG of a few KiB whose header claims 20000×20000 RGBA pixels (1.6 GB decoded), with a
/// valid start of pixel data: 4 KiB of zeros in a stored zlib block.
fn bomb_png() -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&20_000u32.to_be_bytes());
    header.extend_from_slice(&20_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    let zeros = 4096u16;
    let mut idat = vec![0x78, 0x01, 0x01];
    idat.extend_from_slice(&zeros.to_le_bytes());
    idat.extend_from_slice(&(!zeros).to_le_bytes());
    idat.resize(idat.len() + usize::from(zeros), 0);
    idat.extend_from_slice(&((u32::from(zeros) << 16) | 1).to_be_bytes());
    [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        &png_chunk(b"IHDR", &header),
        &png_chunk(b"IDAT", &idat),
        &png_chunk(b"IEND", &[]),
    ]
    .concat()
}

const BOUNDARY: &str = "authgate-test-boundary";

/// A multipart form with one part named `name` holding `bytes`, and a text field beside it.
fn form(name: &str, bytes: &[u8]) -> Vec<u8> {
    [
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nme\r\n").as_bytes(),
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"me.txt\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        )
        .as_bytes(),
        bytes,
        format!("\r\n--{BOUNDARY}--\r\n").as_bytes(),
    ]
    .concat()
}

fn form_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

async fn put(
    app: &TestApp,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = app
        .client
        .put(format!("{}/auth/me/avatar", app.base))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// A served picture.
struct Served {
    status: u16,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Served {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

async fn fetch(app: &TestApp, path: &str, if_none_match: Option<&str>) -> Served {
    let mut request = app.client.get(format!("{}{path}", app.base));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.unwrap();
    Served {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        bytes: response.bytes().await.unwrap().to_vec(),
    }
}

/// The path of the service's own picture URL, after checking the URL is what the contract
/// promises: `{AUTHGATE_PUBLIC_URL}/avatars/{user_id}?v=…`.
#[track_caller]
fn own_path(app: &TestApp, user: &Value) -> String {
    let url = user["profile"]["avatar_url"]
        .as_str()
        .expect("an avatar_url");
    let prefix = format!(
        "{}/avatars/{}?v=",
        app.state.config.public_url,
        user["id"].as_str().unwrap()
    );
    assert!(
        url.starts_with(&prefix) && url.len() > prefix.len(),
        "{url}"
    );
    url.strip_prefix(&app.state.config.public_url)
        .unwrap()
        .to_string()
}

async fn avatar_events(app: &TestApp) -> i64 {
    app.count_where("audit_events", "action = 'avatar_changed'")
        .await
}

db_tests! {
    async fn png_jpeg_and_webp_come_out_as_a_256_px_square_at_the_users_url(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();

        for (content_type, format) in [("image/png", ImageFormat::Png), ("image/jpeg", ImageFormat::Jpeg),
            ("image/webp", ImageFormat::WebP)]
        {
            let reply = put(&app, token, Some(content_type), encoded(photo(), format)).await;

            reply.expect(200, None);
            assert_eq!(reply.body["id"], signed_in["user"]["id"]);
            let path = own_path(&app, &reply.body);
            let served = fetch(&app, &path, None).await;
            assert_eq!(served.status, 200, "{content_type}");
            assert_eq!(served.header("content-type"), "image/jpeg");
            assert!(served.header("cache-control").starts_with("public, max-age="));
            let etag = served.header("etag");
            assert!(etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'), "{etag}");
            assert!(path.ends_with(etag.trim_matches('"')), "the version is the ETag: {path}");
            let picture = image::load_from_memory(&served.bytes).unwrap();
            assert_eq!(picture.dimensions(), (256, 256));
            let centre = picture.to_rgb8().get_pixel(128, 128).0;
            assert!(centre[1] > 150 && centre[0] < 80, "the centre square was kept: {centre:?}");
            assert_eq!(app.get("/auth/me", token).await.body, reply.body);
        }
        assert_eq!(app.count("avatars").await, 1);
        assert_eq!(avatar_events(&app).await, 3);

        // WebP here is lossless: the PNG again gives the same picture, the same URL, no event.
        let same = put(&app, token, Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        same.expect(200, None);
        assert_eq!(same.body, app.get("/auth/me", token).await.body);
        assert_eq!(avatar_events(&app).await, 3);
    }

    async fn a_multipart_form_delivers_its_file_part(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();

        let no_file = put(&app, token, Some(&form_type()), form("picture", &encoded(photo(), ImageFormat::Png))).await;
        let no_boundary = put(&app, token, Some("multipart/form-data"), form("file", b"x")).await;
        let cut_off = put(&app, token, Some(&form_type()), form("file", b"x")[..60].to_vec()).await;

        no_file.expect(400, Some("validation_failed"));
        assert!(!no_file.field_problems("file").is_empty(), "{}", no_file.text);
        no_boundary.expect(400, Some("validation_failed"));
        cut_off.expect(400, Some("validation_failed"));
        assert_eq!(app.count("avatars").await, 0);

        let uploaded = put(&app, token, Some(&form_type()), form("file", &encoded(photo(), ImageFormat::Png))).await;

        uploaded.expect(200, None);
        let served = fetch(&app, &own_path(&app, &uploaded.body), None).await;
        assert_eq!(served.status, 200);
        assert_eq!(image::load_from_memory(&served.bytes).unwrap().dimensions(), (256, 256));
        assert_eq!(avatar_events(&app).await, 1);
    }

    async fn no_exif_survives(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let upload = with_exif(&encoded(photo(), ImageFormat::Jpeg));
        let leaks = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(leaks(&upload, b"SecretCam") && leaks(&upload, b"Exif"));

        let reply = put(&app, signed_in["access"].as_str(), Some("image/jpeg"), upload).await;

        reply.expect(200, None);
        let served = fetch(&app, &own_path(&app, &reply.body), None).await;
        assert_eq!(served.status, 200);
        assert!(!leaks(&served.bytes, b"SecretCam") && !leaks(&served.bytes, b"Exif"));
    }

    async fn the_etag_answers_if_none_match_and_a_new_picture_gets_a_new_url(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let first = put(&app, token, Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        let path = own_path(&app, &first.body);
        let served = fetch(&app, &path, None).await;
        let etag = served.header("etag").to_string();

        for held in [etag.clone(), format!("W/{etag}"), format!("\"stale\", {etag}"), "*".to_string()] {
            let again = fetch(&app, &path, Some(&held)).await;
            assert_eq!(again.status, 304, "{held}");
            assert!(again.bytes.is_empty());
            assert_eq!(again.header("etag"), etag);
            assert!(again.header("cache-control").starts_with("public"));
        }
        assert_eq!(fetch(&app, &path, Some("\"stale\"")).await.status, 200);

        let red = encoded(RgbImage::from_pixel(300, 300, RED), ImageFormat::Png);
        let second = put(&app, token, Some("image/png"), red).await;

        second.expect(200, None);
        let new_path = own_path(&app, &second.body);
        assert_ne!(new_path, path);
        let changed = fetch(&app, &new_path, Some(&etag)).await;
        assert_eq!(changed.status, 200);
        assert_ne!(changed.header("etag"), etag);
        assert_eq!(fetch(&app, &path, None).await.header("etag"), changed.header("etag"),
            "an old version's URL serves the current picture");
        assert_eq!(avatar_events(&app).await, 2);
    }

    async fn other_content_types_get_415(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let png = encoded(photo(), ImageFormat::Png);

        for content_type in [Some("application/json"), Some("text/plain"), Some("image/gif"), Some("image/svg+xml"),
            Some("application/octet-stream"), Some("application/x-www-form-urlencoded"), None]
        {
            let reply = put(&app, token, content_type, png.clone()).await;
            reply.expect(415, Some("unsupported_media_type"));
        }
        let declared_json = app.request(Method::PUT, "/auth/me/avatar", token, Some(json!({"file": "x"}))).await;
        declared_json.expect(415, Some("unsupported_media_type"));
        put(&app, token, Some("IMAGE/PNG; charset=binary"), png).await.expect(200, None);
    }

    async fn uploads_over_the_limit_get_413_and_store_nothing(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.avatar_max_bytes = 256 * 1024).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let oversized = vec![0x89u8; 256 * 1024 + 1];

        let declared = put(&app, token, Some("image/png"), vec![0; 400 * 1024]).await;
        let chunked = Reply::read(
            app.client
                .put(format!("{}/auth/me/avatar", app.base))
                .bearer_auth(token.unwrap())
                .header("content-type", "image/png")
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    (0..5).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 * 1024])),
                )))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let just_over = put(&app, token, Some("image/jpeg"), oversized.clone()).await;
        let in_a_form = put(&app, token, Some(&form_type()), form("file", &oversized)).await;

        for reply in [&declared, &chunked, &just_over, &in_a_form] {
            reply.expect(413, Some("payload_too_large"));
            assert!(reply.body["message"].as_str().unwrap().contains("256"), "{}", reply.text);
        }
        assert_eq!(app.count("avatars").await, 0);
        assert_eq!(app.get("/auth/me", token).await.body["profile"]["avatar_url"], Value::Null);

        // Under the picture limit but over the 64 KiB of JSON bodies.
        let large = noise(200);
        assert!((64 * 1024..256 * 1024).contains(&large.len()), "{} bytes", large.len());
        put(&app, token, Some("image/png"), large.clone()).await.expect(200, None);
        put(&app, token, Some(&form_type()), form("file", &large)).await.expect(200, None);
        // The JSON limit still holds everywhere else.
        app.post("/auth/login", json!({"email": "x".repeat(70 * 1024)})).await.expect(413, Some("payload_too_large"));
    }

    async fn broken_pictures_get_invalid_image_and_store_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let mut truncated = encoded(photo(), ImageFormat::Png);
        truncated.truncate(truncated.len() / 2);
        let too_wide = encoded(RgbImage::new(4097, 8), ImageFormat::Png);

        for (what, content_type, bytes) in [
            ("garbage", "image/jpeg", b"not a picture at all".repeat(50)),
            ("nothing", "image/png", Vec::new()),
            ("a truncated PNG", "image/png", truncated),
            ("a GIF", "image/png", gif()),
            ("an SVG", "image/webp", br#"<svg xmlns="http://www.w3.org/2000/svg"/>"#.to_vec()),
            ("4097 px wide", "image/png", too_wide),
        ] {
            let reply = put(&app, token, Some(content_type), bytes).await;
            assert_eq!(reply.status.as_u16(), 400, "{what}: {}", reply.text);
            assert_eq!(reply.body["error"], "invalid_image", "{what}");
        }

        let bomb = bomb_png();
        assert!(bomb.len() < 8 * 1024, "{} bytes", bomb.len());
        let started = Instant::now();
        let refused = put(&app, token, Some("image/png"), bomb.clone()).await;
        let in_a_form = put(&app, token, Some(&form_type()), form("file", &bomb)).await;
        refused.expect(400, Some("invalid_image"));
        in_a_form.expect(400, Some("invalid_image"));
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

        assert_eq!(app.count("avatars").await, 0);
        assert_eq!(avatar_events(&app).await, 0);
        assert_eq!(app.get("/auth/me", token).await.body["profile"]["avatar_url"], Value::Null);
    }

    async fn removing_the_picture_clears_the_url_and_stops_serving_it(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let uploaded = put(&app, token, Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        let path = own_path(&app, &uploaded.body);

        let removed = app.request(Method::DELETE, "/auth/me/avatar", token, None).await;

        removed.expect(200, None);
        assert_eq!(removed.body["profile"]["avatar_url"], Value::Null);
        assert_eq!(removed.body["email"], "jane@example.com");
        let gone = fetch(&app, &path, None).await;
        assert_eq!(gone.status, 404);
        assert_eq!(serde_json::from_slice::<Value>(&gone.bytes).unwrap()["error"], "not_found");
        assert_eq!(app.count("avatars").await, 0);
        assert_eq!(app.get("/auth/me", token).await.body, removed.body);

        let again = app.request(Method::DELETE, "/auth/me/avatar", token, None).await;
        again.expect(200, None);
        assert_eq!(again.body["profile"]["avatar_url"], Value::Null);
        assert_eq!(avatar_events(&app).await, 2, "an upload and a removal; removing nothing is no event");
    }

    async fn unknown_malformed_and_empty_ids_are_404(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let without_picture = signed_in["user"]["id"].as_str().unwrap();

        for path in [
            format!("/avatars/{}", uuid::Uuid::new_v4()),
            format!("/avatars/{without_picture}"),
            "/avatars/not-a-uuid".to_string(),
            "/avatars/%27%3B%20DROP%20TABLE%20avatars%3B--".to_string(),
            format!("/avatars/{}", "a".repeat(5000)),
            "/avatars/".to_string(),
        ] {
            let served = fetch(&app, &path, None).await;
            assert_eq!(served.status, 404, "{path}");
            let body: Value = serde_json::from_slice(&served.bytes).unwrap();
            assert_eq!(body["error"], "not_found", "{path}");
        }
    }

    async fn pictures_are_public_but_only_their_owner_changes_them(db: Db) {
        let app = TestApp::spawn(db).await;
        let jane = app.verified_user("jane@example.com").await;
        let mallory = app.verified_user("mallory@example.com").await;
        let uploaded = put(&app, jane["access"].as_str(), Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        let path = own_path(&app, &uploaded.body);
        let etag = fetch(&app, &path, None).await.header("etag").to_string();

        let anonymous_put = put(&app, None, Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        let anonymous_delete = app.request(Method::DELETE, "/auth/me/avatar", None, None).await;
        let forged = put(&app, Some("not.a.token"), Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        let mallory_removes = app.request(Method::DELETE, "/auth/me/avatar", mallory["access"].as_str(), None).await;
        let red = encoded(RgbImage::from_pixel(64, 64, RED), ImageFormat::Png);
        let mallory_uploads = put(&app, mallory["access"].as_str(), Some("image/png"), red).await;

        anonymous_put.expect(401, Some("unauthorized"));
        assert_eq!(anonymous_put.header("www-authenticate"), Some("Bearer"));
        anonymous_delete.expect(401, Some("unauthorized"));
        forged.expect(401, Some("unauthorized"));
        mallory_removes.expect(200, None);
        assert_eq!(mallory_uploads.body["id"], mallory["user"]["id"]);
        let janes = fetch(&app, &path, None).await;
        assert_eq!(janes.status, 200, "served to anyone, no token needed");
        assert_eq!(janes.header("etag"), etag, "Jane's picture is untouched");
        assert_ne!(own_path(&app, &mallory_uploads.body), path);
        assert_eq!(app.count("avatars").await, 2);
        let jane_me = app.get("/auth/me", jane["access"].as_str()).await;
        assert_eq!(jane_me.body["profile"]["avatar_url"], uploaded.body["profile"]["avatar_url"]);
    }

    async fn a_url_set_by_hand_replaces_the_stored_picture(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let uploaded = put(&app, token, Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        let own_url = uploaded.body["profile"]["avatar_url"].clone();
        let path = own_path(&app, &uploaded.body);

        let bio = app.request(Method::PATCH, "/auth/me", token, Some(json!({"profile": {"bio": "Hi."}}))).await;
        let same_url = app.request(Method::PATCH, "/auth/me", token, Some(json!({"profile": {"avatar_url": own_url}}))).await;

        assert_eq!(bio.body["profile"]["avatar_url"], own_url);
        assert_eq!(same_url.body["profile"]["avatar_url"], own_url);
        assert_eq!(fetch(&app, &path, None).await.status, 200, "other edits leave the picture alone");

        let external = app
            .request(Method::PATCH, "/auth/me", token,
                Some(json!({"profile": {"avatar_url": "https://cdn.example.com/jane.png"}})))
            .await;

        external.expect(200, None);
        assert_eq!(external.body["profile"]["avatar_url"], "https://cdn.example.com/jane.png");
        assert_eq!(fetch(&app, &path, None).await.status, 404);
        assert_eq!(app.count("avatars").await, 0);

        let uploaded_again = put(&app, token, Some("image/webp"), encoded(photo(), ImageFormat::WebP)).await;
        uploaded_again.expect(200, None);
        own_path(&app, &uploaded_again.body);
        let cleared = app.request(Method::PATCH, "/auth/me", token, Some(json!({"profile": {"avatar_url": null}}))).await;
        assert_eq!(cleared.body["profile"]["avatar_url"], Value::Null);
        assert_eq!(app.count("avatars").await, 0);
    }

    async fn a_picture_change_cannot_be_reverted_to_a_picture_that_is_gone(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("boss@example.com").await;
        app.execute("UPDATE users SET role = 'admin' WHERE email = 'boss@example.com'").await;
        let boss = app.login("boss@example.com", PASSWORD).await.body["access"].as_str().unwrap().to_string();
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        put(&app, token, Some("image/png"), encoded(photo(), ImageFormat::Png)).await.expect(200, None);
        let second = put(&app, token, Some("image/webp"), encoded(photo(), ImageFormat::WebP)).await;
        second.expect(200, None);
        let path = own_path(&app, &second.body);

        let events = app.get("/admin/audit?event=avatar_changed&limit=1", Some(&boss)).await;
        let change = events.body["events"][0]["id"].as_str().unwrap().to_string();
        let refused = app.request(Method::POST, &format!("/admin/audit/{change}/revert"), Some(&boss), None).await;

        refused.expect(400, Some("not_revertible"));
        assert_eq!(fetch(&app, &path, None).await.status, 200, "the picture shown is still there");
        let me = app.get("/auth/me", token).await;
        assert_eq!(me.body["profile"]["avatar_url"], second.body["profile"]["avatar_url"]);
    }

    async fn every_instance_serves_the_picture_under_its_public_url(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let uploaded = put(&app, token, Some("image/png"), encoded(photo(), ImageFormat::Png)).await;
        let path = own_path(&app, &uploaded.body);
        let moved = app
            .spawn_alongside(|config| config.public_url = "https://id.example.com/auth".into())
            .await;

        let served = fetch(&moved, &path, None).await;
        // Its tokens have another issuer, so sign in there.
        let signed_in_there = moved.login("jane@example.com", PASSWORD).await;
        let me = moved.get("/auth/me", signed_in_there.body["access"].as_str()).await;

        assert_eq!(served.status, 200);
        assert_eq!(me.body["profile"]["avatar_url"], format!("https://id.example.com/auth{path}"));
    }
}
