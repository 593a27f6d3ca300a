//! Profile pictures: whatever is uploaded comes out as a fresh 256×256 square, or not at all.
//!
//! An upload is untrusted bytes. Its format is sniffed from its content, never taken from the
//! name or type the client declares, and only PNG, JPEG and WebP are decoded. Its dimensions
//! are read from the header and checked before a single pixel is decoded, so a file of a few
//! KiB claiming 20000×20000 px (a decompression bomb) costs nothing; the decoder's own
//! `Limits` back that check up. The picture is then centre-cropped, scaled and encoded afresh
//! from its pixels alone, so none of the upload's metadata (EXIF with GPS position or camera
//! serial, ICC, XMP) nor any data smuggled after the image survives.
//!
//! Decoding is CPU-bound, so like password hashing it runs on the blocking pool, at most one
//! picture per core, behind a short bounded queue; past it the caller is told `Busy` at once.

use std::{fmt::Write as _, io::Cursor};

use image::{
    DynamicImage, ImageDecoder as _, ImageFormat, ImageReader, Limits,
    codecs::{jpeg::JpegEncoder, png::PngEncoder},
    imageops::FilterType,
    metadata::Orientation,
};
use sha2::{Digest as _, Sha256};

use super::blocking_pool::{BlockingPool, PoolError};

/// Largest accepted source width or height, in pixels. Far more than a 256 px avatar needs,
/// and it caps what decoding one upload can cost.
pub const MAX_SOURCE_SIDE: u32 = 4096;
/// Width and height of every processed picture, in pixels.
pub const OUTPUT_SIDE: u32 = 256;
/// Quality of opaque output: indistinguishable from the source at avatar size, and a 256 px
/// photo stays around 15–30 KB.
const JPEG_QUALITY: u8 = 85;
/// Triangle widens with the reduction, so every source pixel counts and a large reduction does
/// not alias, and it serves small sources being enlarged too. Shrinking the 2000 px square of
/// a 2 MB photo takes it 17 ms (release, shared 2-core machine), where Lanczos3 takes 48 ms,
/// a third of the 150 ms budget, for no difference visible at 256 px; `thumbnail` (8 ms)
/// aliases on small reductions and would need a second path for those.
const RESIZE_FILTER: FilterType = FilterType::Triangle;
/// Pictures that may wait for a worker, per worker: a few hundred milliseconds of work, and
/// a bound on the uploads held in memory while waiting.
const WAITING_PER_WORKER: usize = 4;
/// What a decoder may allocate: a [`MAX_SOURCE_SIDE`] square in the widest pixel format the
/// three decoders produce (16-bit RGBA from PNG, 8 bytes a pixel), so 128 MiB.
const MAX_DECODED_BYTES: u64 = MAX_SOURCE_SIDE as u64 * MAX_SOURCE_SIDE as u64 * 8;

/// A processed picture, ready to store and serve.
pub struct Picture {
    /// The encoded [`OUTPUT_SIDE`] square, without any metadata.
    pub bytes: Vec<u8>,
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// A strong ETag of `bytes`, quotes included, as the `ETag` header wants it.
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// Not a PNG, JPEG or WebP image that we accept. The reason is for the logs: a client
    /// only needs to know the picture was refused.
    #[error("invalid picture: {0}")]
    Invalid(String),
    /// Too many pictures are already waiting; the client should try again shortly.
    #[error("too many pictures are being processed")]
    Busy,
    /// Processing failed for a reason of ours, not of the upload's.
    #[error("picture processing failed: {0}")]
    Internal(String),
}

/// Turns uploads into [`Picture`]s on the blocking pool, one per core at a time.
pub struct PictureProcessor {
    pool: BlockingPool,
    max_upload_bytes: usize,
}

impl PictureProcessor {
    /// A processor with one worker per core: decoding is CPU-bound, so more would only thrash.
    /// Uploads over `max_upload_bytes` (`AUTHGATE_AVATAR_MAX_BYTES`) are refused unread: the
    /// API refuses longer bodies before reading them, and here the limit bounds what each
    /// queued picture holds in memory.
    pub fn new(max_upload_bytes: usize) -> PictureProcessor {
        PictureProcessor {
            pool: BlockingPool::new(BlockingPool::workers() * WAITING_PER_WORKER),
            max_upload_bytes,
        }
    }

    /// Decodes the upload, whatever it claims to be, crops its centre square and encodes it
    /// afresh at [`OUTPUT_SIDE`]×[`OUTPUT_SIDE`] px. Runs on the blocking pool.
    pub async fn process(&self, upload: Vec<u8>) -> Result<Picture, PictureError> {
        if upload.len() > self.max_upload_bytes {
            return Err(PictureError::Invalid(format!(
                "{} bytes exceeds {}",
                upload.len(),
                self.max_upload_bytes
            )));
        }
        self.pool
            .run(move || process_blocking(&upload))
            .await
            .map_err(|err| match err {
                PoolError::Full => PictureError::Busy,
                PoolError::Failed(err) => {
                    PictureError::Internal(format!("picture task failed: {err}"))
                }
            })?
    }
}

fn process_blocking(upload: &[u8]) -> Result<Picture, PictureError> {
    let (source, orientation) = decode(upload)?;
    let mut square = centre_square(source);
    // Turning the 256 px square rather than the source is far cheaper and comes to the same:
    // the centre square of a turned or mirrored picture is the turned or mirrored centre
    // square.
    square.apply_orientation(orientation);
    encode(&square)
}

fn invalid(err: impl std::fmt::Display) -> PictureError {
    PictureError::Invalid(err.to_string())
}

/// Decodes PNG, JPEG or WebP, known by their magic bytes, refusing oversized pictures before
/// any pixel is decoded. Also returns the orientation their metadata asks for.
fn decode(upload: &[u8]) -> Result<(DynamicImage, Orientation), PictureError> {
    let reader = ImageReader::new(Cursor::new(upload))
        .with_guessed_format()
        .map_err(invalid)?;
    // An explicit list rather than whatever decoders happen to be compiled in: another crate
    // enabling more `image` features must not widen what an upload can reach.
    match reader.format() {
        Some(ImageFormat::Jpeg) if !jpeg_reaches_its_end(upload) => {
            return Err(PictureError::Invalid("JPEG without its end marker".into()));
        }
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        other => {
            return Err(PictureError::Invalid(format!(
                "not PNG, JPEG or WebP: {other:?}"
            )));
        }
    }
    // This reads the headers only: nothing the size of the image is allocated yet.
    let mut decoder = reader.into_decoder().map_err(invalid)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || width > MAX_SOURCE_SIDE || height == 0 || height > MAX_SOURCE_SIDE {
        return Err(PictureError::Invalid(format!(
            "{width}×{height} px is outside 1..={MAX_SOURCE_SIDE} px a side"
        )));
    }
    // Second line of defence, should the check above ever disagree with what the decoder
    // does: the decoder itself refuses oversized dimensions, and the output buffer plus the
    // decoder's own allocations must fit under a cap.
    let mut limits = decoding_limits();
    limits.reserve(decoder.total_bytes()).map_err(invalid)?;
    decoder.set_limits(limits).map_err(invalid)?;
    // A phone held upright stores its photo sideways with an EXIF note to turn it. The note
    // goes with the rest of the metadata, so the turn must be applied here; unreadable
    // metadata is no reason to refuse the picture.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(invalid)?;
    Ok((image, orientation))
}

/// Whether a JPEG's image data goes on to its end-of-image marker. The decoder paints grey
/// whatever a cut-off upload lacks instead of failing, which would store a half-grey avatar
/// where the user should be told to upload again; the PNG and WebP decoders do fail.
fn jpeg_reaches_its_end(jpeg: &[u8]) -> bool {
    // Segments up to the first scan state their lengths. Stepping over them, rather than
    // searching, skips an EXIF thumbnail, which is a whole JPEG with its own end marker.
    let mut at = 2;
    loop {
        match jpeg.get(at..) {
            Some(&[0xFF, 0xFF, ..]) => at += 1,
            Some(&[0xFF, 0xDA, ..]) => {
                // In scan data a 0xFF byte is followed by 0x00 or a restart marker, never by
                // 0xD9, so the pair is the end marker (only the tables between a progressive
                // JPEG's scans could hold it by chance, and the price of that is a grey patch).
                // It is searched for from the end, where a complete file has it.
                return jpeg[at..].windows(2).rev().any(|pair| pair == [0xFF, 0xD9]);
            }
            Some(&[0xFF, _, high, low, ..]) => {
                at += 2 + usize::from(u16::from_be_bytes([high, low]));
            }
            _ => return false,
        }
    }
}

fn decoding_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

/// The largest centred square, scaled to [`OUTPUT_SIDE`]. Takes the source so that its up to
/// 128 MiB are freed before encoding.
fn centre_square(image: DynamicImage) -> DynamicImage {
    let side = image.width().min(image.height());
    let left = (image.width() - side) / 2;
    let top = (image.height() - side) / 2;
    image
        .crop_imm(left, top, side, side)
        .resize_exact(OUTPUT_SIDE, OUTPUT_SIDE, RESIZE_FILTER)
}

fn encode(square: &DynamicImage) -> Result<Picture, PictureError> {
    let mut bytes = Vec::new();
    // JPEG is a fraction of PNG's size for photos, which most avatars are, but has no alpha:
    // see-through pixels would turn black. So PNG only when some pixel really is see-through;
    // an alpha channel that is opaque everywhere, common in PNG exports, still gets JPEG.
    let content_type = if has_transparency(square) {
        square
            .to_rgba8()
            .write_with_encoder(PngEncoder::new(&mut bytes))
            .map(|()| "image/png")
    } else {
        square
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY))
            .map(|()| "image/jpeg")
    }
    .map_err(|err| PictureError::Internal(format!("encoding: {err}")))?;
    let etag = strong_etag(&bytes);
    Ok(Picture {
        bytes,
        content_type,
        etag,
    })
}

fn has_transparency(image: &DynamicImage) -> bool {
    image.has_alpha() && image.to_rgba8().pixels().any(|pixel| pixel.0[3] < u8::MAX)
}

/// `"` + the first 128 bits of SHA-256 of the bytes in hex + `"`: equal only for equal bytes,
/// as a strong ETag must be, at half the length of the whole digest.
fn strong_etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut etag = String::with_capacity(34);
    etag.push('"');
    for byte in &digest[..16] {
        let _ = write!(etag, "{byte:02x}");
    }
    etag.push('"');
    etag
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use image::{GenericImageView as _, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    const RED: Rgb<u8> = Rgb([220, 30, 30]);
    const GREEN: Rgb<u8> = Rgb([30, 200, 30]);
    const BLUE: Rgb<u8> = Rgb([30, 30, 220]);

    fn encoded(image: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.into().write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    /// `outer` everywhere but the centred square, which is `centre`.
    fn centre_marked(width: u32, height: u32, outer: Rgb<u8>, centre: Rgb<u8>) -> RgbImage {
        let side = width.min(height);
        let (left, top) = ((width - side) / 2, (height - side) / 2);
        RgbImage::from_fn(width, height, |x, y| {
            let inside = (left..left + side).contains(&x) && (top..top + side).contains(&y);
            if inside { centre } else { outer }
        })
    }

    /// The default `AUTHGATE_AVATAR_MAX_BYTES`.
    const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

    async fn process(upload: Vec<u8>) -> Result<Picture, PictureError> {
        PictureProcessor::new(MAX_UPLOAD_BYTES)
            .process(upload)
            .await
    }

    fn decoded(picture: &Picture) -> DynamicImage {
        image::load_from_memory(&picture.bytes).unwrap()
    }

    fn assert_close(image: &DynamicImage, (x, y): (u32, u32), expected: Rgb<u8>) {
        let actual = image.to_rgb8().get_pixel(x, y).0;
        let close = actual
            .iter()
            .zip(expected.0)
            .all(|(&a, e)| a.abs_diff(e) <= 40);
        assert!(
            close,
            "pixel ({x}, {y}) is {actual:?}, expected {expected:?}"
        );
    }

    fn assert_refused(result: Result<Picture, PictureError>, what: &str) {
        assert!(
            matches!(result, Err(PictureError::Invalid(_))),
            "{what} was not refused as invalid"
        );
    }

    /// The markers of a JPEG's segments before its image data.
    fn jpeg_markers(jpeg: &[u8]) -> Vec<u8> {
        let mut markers = Vec::new();
        let mut at = 2;
        while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
            let marker = jpeg[at + 1];
            markers.push(marker);
            if marker == 0xDA {
                break;
            }
            at += 2 + usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        }
        markers
    }

    /// `jpeg` with an EXIF APP1 segment after its SOI, carrying an orientation and a camera
    /// make that must not leak.
    fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
        tiff.extend_from_slice(&2u16.to_be_bytes());
        // Orientation: SHORT, 1 value, stored in the entry.
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        // Make: ASCII, 10 bytes, stored after the IFD (8 + 2 + 2 × 12 + 4 = 38).
        tiff.extend_from_slice(&[0x01, 0x0F, 0, 2, 0, 0, 0, 10, 0, 0, 0, 38]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(b"SecretCam\0");
        let payload = [b"Exif\0\0".as_slice(), &tiff].concat();
        let length = u16::try_from(payload.len() + 2).unwrap();
        let segment = [&[0xFF, 0xE1], &length.to_be_bytes()[..], &payload].concat();
        [&jpeg[..2], &segment, &jpeg[2..]].concat()
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

    /// A PNG whose header claims 20000×20000 RGBA pixels (1.6 GB decoded), followed by a
    /// valid zlib stream of 1 KiB of zeros: the start of the bomb's pixel data.
    fn bomb_png() -> Vec<u8> {
        let mut header = Vec::new();
        header.extend_from_slice(&20_000u32.to_be_bytes());
        header.extend_from_slice(&20_000u32.to_be_bytes());
        header.extend_from_slice(&[8, 6, 0, 0, 0]);
        // zlib header, one final stored block of LEN zeros, then the Adler-32 of those zeros.
        let zeros = 1024u16;
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

    /// A 1×1 GIF.
    fn gif() -> Vec<u8> {
        [
            b"GIF89a\x01\0\x01\0\x80\0\0".as_slice(),
            &[0, 0, 0, 255, 255, 255],
            b"\x2c\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0\x3b",
        ]
        .concat()
    }

    /// A 1×1 24-bit BMP.
    fn bmp() -> Vec<u8> {
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&58u32.to_le_bytes());
        bmp.extend_from_slice(&[0, 0, 0, 0]);
        bmp.extend_from_slice(&54u32.to_le_bytes());
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&1i32.to_le_bytes());
        bmp.extend_from_slice(&1i32.to_le_bytes());
        bmp.extend_from_slice(&1u16.to_le_bytes());
        bmp.extend_from_slice(&24u16.to_le_bytes());
        bmp.extend_from_slice(&[0; 24]);
        bmp.extend_from_slice(&[30, 30, 220, 0]);
        bmp
    }

    #[tokio::test]
    async fn png_jpeg_and_webp_come_out_as_a_256_px_square() {
        let source = centre_marked(640, 480, RED, GREEN);
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let picture = process(encoded(source.clone(), format)).await.unwrap();
            assert_eq!(picture.content_type, "image/jpeg", "{format:?}");
            assert_eq!(
                image::guess_format(&picture.bytes).unwrap(),
                ImageFormat::Jpeg
            );
            let output = decoded(&picture);
            assert_eq!(output.dimensions(), (OUTPUT_SIDE, OUTPUT_SIDE));
            assert_close(&output, (128, 128), GREEN);
        }
    }

    #[tokio::test]
    async fn data_after_a_complete_jpeg_is_ignored() {
        // What some phones do with "motion photos": a video appended after the end marker.
        let photo = encoded(centre_marked(64, 64, RED, GREEN), ImageFormat::Jpeg);
        let upload = [photo.as_slice(), b"ftypmp42 and a video"].concat();
        let picture = process(upload).await.unwrap();
        assert!(!picture.bytes.windows(4).any(|w| w == b"ftyp"));
    }

    #[tokio::test]
    async fn small_pictures_are_scaled_up() {
        let picture = process(encoded(centre_marked(40, 30, RED, BLUE), ImageFormat::Png))
            .await
            .unwrap();
        let output = decoded(&picture);
        assert_eq!(output.dimensions(), (OUTPUT_SIDE, OUTPUT_SIDE));
        assert_close(&output, (128, 128), BLUE);
    }

    #[tokio::test]
    async fn wide_and_tall_pictures_keep_their_centre_square() {
        for (width, height) in [(900, 300), (300, 900)] {
            let source = centre_marked(width, height, RED, GREEN);
            let picture = process(encoded(source, ImageFormat::Png)).await.unwrap();
            let output = decoded(&picture);
            for corner in [(4, 4), (251, 4), (4, 251), (251, 251), (128, 128)] {
                assert_close(&output, corner, GREEN);
            }
        }
    }

    #[tokio::test]
    async fn see_through_pictures_stay_png_and_opaque_alpha_gives_jpeg() {
        let see_through = RgbaImage::from_fn(300, 300, |x, _| Rgba([30, 30, 220, (x % 256) as u8]));
        let picture = process(encoded(see_through, ImageFormat::Png))
            .await
            .unwrap();
        assert_eq!(picture.content_type, "image/png");
        assert_eq!(
            image::guess_format(&picture.bytes).unwrap(),
            ImageFormat::Png
        );
        let output = decoded(&picture);
        assert_eq!(output.dimensions(), (OUTPUT_SIDE, OUTPUT_SIDE));
        assert!(output.to_rgba8().get_pixel(0, 128).0[3] < 10);

        let opaque = RgbaImage::from_pixel(300, 300, Rgba([30, 30, 220, 255]));
        let picture = process(encoded(opaque, ImageFormat::Png)).await.unwrap();
        assert_eq!(picture.content_type, "image/jpeg");
    }

    #[tokio::test]
    async fn exif_is_dropped_after_its_orientation_is_applied() {
        // Top half red, bottom half blue; orientation 6 asks for a quarter turn clockwise,
        // which puts the red half on the right.
        let source = RgbImage::from_fn(300, 300, |_, y| if y < 150 { RED } else { BLUE });
        let upload = with_exif(&encoded(source, ImageFormat::Jpeg), 6);
        assert!(jpeg_markers(&upload).contains(&0xE1));

        let picture = process(upload).await.unwrap();
        let markers = jpeg_markers(&picture.bytes);
        assert!(
            markers.iter().all(|marker| !(0xE1..=0xEF).contains(marker)),
            "metadata segments left: {markers:02x?}"
        );
        let leaks = |needle: &[u8]| picture.bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!leaks(b"Exif") && !leaks(b"SecretCam"));
        let output = decoded(&picture);
        assert_close(&output, (230, 128), RED);
        assert_close(&output, (25, 128), BLUE);
    }

    #[tokio::test]
    async fn other_formats_garbage_and_truncated_pictures_are_refused() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#;
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for (what, upload) in [
            ("a GIF", gif()),
            ("a BMP", bmp()),
            ("an SVG", svg.to_vec()),
            ("garbage", garbage),
            ("nothing", Vec::new()),
            ("a PNG signature alone", b"\x89PNG\r\n\x1a\n".to_vec()),
        ] {
            assert_refused(process(upload).await, what);
        }
        let source = RgbImage::from_fn(400, 400, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let mut upload = encoded(source.clone(), format);
            upload.truncate(upload.len() / 2);
            assert_refused(process(upload).await, &format!("a truncated {format:?}"));
        }
        // An EXIF thumbnail is a whole JPEG, end marker included, ahead of the main image.
        let thumbnail = encoded(RgbImage::new(8, 8), ImageFormat::Jpeg);
        let payload = [b"Exif\0\0".as_slice(), &thumbnail].concat();
        let length = u16::try_from(payload.len() + 2).unwrap().to_be_bytes();
        let mut upload = encoded(source, ImageFormat::Jpeg);
        upload.truncate(upload.len() / 2);
        let upload = [&upload[..2], &[0xFF, 0xE1], &length, &payload, &upload[2..]].concat();
        assert_refused(process(upload).await, "a truncated JPEG with a thumbnail");
    }

    #[tokio::test]
    async fn more_than_4096_px_a_side_is_refused() {
        for (width, height) in [(5000, 10), (10, 5000)] {
            let upload = encoded(RgbImage::new(width, height), ImageFormat::Png);
            assert_refused(process(upload).await, &format!("{width}×{height}"));
        }
        let widest = encoded(RgbImage::new(MAX_SOURCE_SIDE, 8), ImageFormat::Png);
        assert!(process(widest).await.is_ok());
    }

    #[tokio::test]
    async fn a_decompression_bomb_is_refused_from_its_header() {
        let bomb = bomb_png();
        assert!(bomb.len() < 2048, "the bomb is {} bytes", bomb.len());
        let started = Instant::now();
        let refused = process(bomb).await;
        assert!(
            matches!(&refused, Err(PictureError::Invalid(reason)) if reason.contains("20000×20000")),
            "the bomb was not refused from its header"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn the_decoder_limits_refuse_what_the_header_check_refuses() {
        let limits = decoding_limits();
        assert!(
            limits
                .check_dimensions(MAX_SOURCE_SIDE, MAX_SOURCE_SIDE)
                .is_ok()
        );
        assert!(limits.check_dimensions(MAX_SOURCE_SIDE + 1, 1).is_err());
        assert!(limits.check_dimensions(1, MAX_SOURCE_SIDE + 1).is_err());
        let bomb_bytes = 20_000u64 * 20_000 * 4;
        assert!(decoding_limits().reserve(bomb_bytes).is_err());
        assert!(decoding_limits().reserve(MAX_DECODED_BYTES).is_ok());
    }

    #[tokio::test]
    async fn oversized_uploads_are_refused_unread() {
        assert_refused(
            process(vec![0; MAX_UPLOAD_BYTES + 1]).await,
            "an oversized upload",
        );
    }

    #[tokio::test]
    async fn the_etag_is_strong_and_follows_the_bytes() {
        let red = encoded(RgbImage::from_pixel(64, 64, RED), ImageFormat::Png);
        let blue = encoded(RgbImage::from_pixel(64, 64, BLUE), ImageFormat::Png);
        let first = process(red.clone()).await.unwrap();
        let again = process(red).await.unwrap();
        let other = process(blue).await.unwrap();
        assert_eq!(first.etag.len(), 34);
        assert!(first.etag.starts_with('"') && first.etag.ends_with('"'));
        assert!(
            first.etag[1..33]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let digest = Sha256::digest(&first.bytes);
        assert_eq!(first.etag[1..3], format!("{:02x}", digest[0]));
        assert_eq!(first.etag, again.etag);
        assert_ne!(first.etag, other.etag);
    }

    /// `cargo test --release --lib pictures -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "a timing, meaningful only in a release build"]
    async fn a_two_megabyte_photo_takes_well_under_150_ms() {
        use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(7);
        let photo = RgbImage::from_fn(3000, 2000, |x, y| {
            let grain = rng.gen_range(0..16u32);
            Rgb([
                ((x / 12 + grain) % 256) as u8,
                ((y / 8 + grain) % 256) as u8,
                (((x + y) / 20 + grain) % 256) as u8,
            ])
        });
        let mut upload = Vec::new();
        photo
            .write_with_encoder(JpegEncoder::new_with_quality(&mut upload, 90))
            .unwrap();
        println!("upload: 3000×2000 JPEG, {} bytes", upload.len());

        let started = Instant::now();
        let (source, orientation) = decode(&upload).unwrap();
        let decoding = started.elapsed();
        let started = Instant::now();
        let mut square = centre_square(source);
        square.apply_orientation(orientation);
        let scaling = started.elapsed();
        let started = Instant::now();
        let picture = encode(&square).unwrap();
        let encoding = started.elapsed();
        println!(
            "decode {decoding:?}, crop and scale {scaling:?}, encode {encoding:?} ({} bytes)",
            picture.bytes.len()
        );

        let processor = PictureProcessor::new(MAX_UPLOAD_BYTES);
        let mut times = Vec::new();
        for _ in 0..15 {
            let started = Instant::now();
            processor.process(upload.clone()).await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "process: min {:?}, median {:?}, max {:?}",
            times[0], times[7], times[14]
        );
        assert!(times[7] < Duration::from_millis(150));
    }
}
