//! QR images: render a payload to PNG or SVG, and find codes in photos.
//!
//! Rendering choices, the same for PNG and SVG:
//! - error-correction level M (15 % recovery) by default: payment codes are
//!   shown on screens or printed fresh, and M keeps the module count low so
//!   phones and cashier scanners read them fast; posters that get dirty can
//!   ask for Q or H;
//! - a quiet zone of 4 modules, the minimum ISO/IEC 18004 requires;
//! - black on white, whole-pixel modules (PNG default 8 px per module).

use std::io::Cursor;

use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, EcLevel, QrCode};
use serde::Serialize;

/// Error-correction level of a rendered code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Correction {
    L,
    #[default]
    M,
    Q,
    H,
}

impl Correction {
    fn level(self) -> EcLevel {
        match self {
            Correction::L => EcLevel::L,
            Correction::M => EcLevel::M,
            Correction::Q => EcLevel::Q,
            Correction::H => EcLevel::H,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    pub correction: Correction,
    /// Pixels per module in PNG output.
    pub module_px: u32,
    /// Quiet zone in modules on each side.
    pub quiet_zone: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            correction: Correction::M,
            module_px: 8,
            quiet_zone: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("payload does not fit in a QR code: {0}")]
    TooLong(String),
    #[error("render options out of range: {0}")]
    Options(&'static str),
    #[error("cannot encode PNG: {0}")]
    Encode(String),
    #[error("cannot read image: {0}")]
    Decode(String),
    #[error("no QR code found in the image")]
    NotFound,
}

/// The module matrix of a payload: `width * width` booleans, true = dark.
pub struct Matrix {
    pub width: usize,
    pub dark: Vec<bool>,
    /// QR version 1 to 40.
    pub version: i16,
}

pub fn matrix(payload: &str, correction: Correction) -> Result<Matrix, ImageError> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), correction.level())
        .map_err(|e| ImageError::TooLong(e.to_string()))?;
    let version = match code.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => v,
    };
    Ok(Matrix {
        width: code.width(),
        dark: code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect(),
        version,
    })
}

fn check(opts: &RenderOptions) -> Result<(), ImageError> {
    if opts.module_px == 0 || opts.module_px > 64 {
        return Err(ImageError::Options("module_px must be 1 to 64"));
    }
    if opts.quiet_zone > 16 {
        return Err(ImageError::Options("quiet_zone must be at most 16 modules"));
    }
    Ok(())
}

/// Render to an 8-bit greyscale image.
pub fn render_gray(payload: &str, opts: &RenderOptions) -> Result<GrayImage, ImageError> {
    check(opts)?;
    let m = matrix(payload, opts.correction)?;
    let w = m.width as u32;
    let side = (w + 2 * opts.quiet_zone) * opts.module_px;
    let mut img = GrayImage::from_pixel(side, side, Luma([255]));
    for y in 0..w {
        for x in 0..w {
            if m.dark[(y * w + x) as usize] {
                let px = (x + opts.quiet_zone) * opts.module_px;
                let py = (y + opts.quiet_zone) * opts.module_px;
                for dy in 0..opts.module_px {
                    for dx in 0..opts.module_px {
                        img.put_pixel(px + dx, py + dy, Luma([0]));
                    }
                }
            }
        }
    }
    Ok(img)
}

pub fn render_png(payload: &str, opts: &RenderOptions) -> Result<Vec<u8>, ImageError> {
    let img = render_gray(payload, opts)?;
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

/// Render to SVG: one path of unit squares in module coordinates, scaled by the viewer.
pub fn render_svg(payload: &str, opts: &RenderOptions) -> Result<String, ImageError> {
    check(opts)?;
    let m = matrix(payload, opts.correction)?;
    let q = opts.quiet_zone as usize;
    let side = m.width + 2 * q;
    let px = side * opts.module_px as usize;
    let mut path = String::new();
    for y in 0..m.width {
        let mut x = 0;
        while x < m.width {
            if m.dark[y * m.width + x] {
                // Merge horizontal runs into one rectangle.
                let start = x;
                while x < m.width && m.dark[y * m.width + x] {
                    x += 1;
                }
                path.push_str(&format!(
                    "M{} {}h{}v1h-{}z",
                    start + q,
                    y + q,
                    x - start,
                    x - start
                ));
            } else {
                x += 1;
            }
        }
    }
    Ok(format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{px}\" height=\"{px}\" ",
            "viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">",
            "<rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/>",
            "<path fill=\"#000\" d=\"{path}\"/></svg>\n"
        ),
        px = px,
        side = side,
        path = path
    ))
}

/// A code found in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scanned {
    pub payload: String,
    /// QR version of the symbol.
    pub version: usize,
    /// Corner points in image pixels (top-left, top-right, bottom-right, bottom-left).
    pub corners: [(i32, i32); 4],
}

/// Find and decode every QR code in a PNG or JPEG image.
pub fn scan(bytes: &[u8]) -> Result<Vec<Scanned>, ImageError> {
    let img = image::load_from_memory(bytes).map_err(|e| ImageError::Decode(e.to_string()))?;
    scan_gray(&img.to_luma8())
}

/// The largest image an untrusted upload may decode to: a photo from a
/// phone fits, a decompression bomb (a small file that claims a huge
/// picture) is refused before its pixels are allocated.
pub const UPLOAD_MAX_SIDE: u32 = 8192;
/// A phone's photo (12 megapixels) fits; the JPEG decoder's working
/// buffers for this many pixels stay near 100 MB.
pub const UPLOAD_MAX_PIXELS: u64 = 16_000_000;

/// [`scan`] for an image from outside: its declared size is checked
/// against [`UPLOAD_MAX_SIDE`] and [`UPLOAD_MAX_PIXELS`] before it is
/// decoded, and the decoder's allocations are capped.
pub fn scan_upload(bytes: &[u8]) -> Result<Vec<Scanned>, ImageError> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(UPLOAD_MAX_SIDE);
    limits.max_image_height = Some(UPLOAD_MAX_SIDE);
    // A decoded RGBA picture of the largest size, and a little more.
    limits.max_alloc = Some(UPLOAD_MAX_PIXELS * 4 + (1 << 20));
    reader.limits(limits.clone());
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    if u64::from(w) * u64::from(h) > UPLOAD_MAX_PIXELS {
        return Err(ImageError::Decode(format!(
            "the image is {w}x{h} pixels; at most {UPLOAD_MAX_PIXELS} are read"
        )));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    // The colour picture is freed before the scan's own copies are made.
    scan_gray(&img.into_luma8())
}

pub fn scan_gray(img: &GrayImage) -> Result<Vec<Scanned>, ImageError> {
    // Try the image as it is, then variants that help with blur, low
    // resolution and uneven light; stop at the first that yields a code.
    let found = scan_once(img);
    if !found.is_empty() {
        return Ok(found);
    }
    let found = scan_once(&binarize(img));
    if !found.is_empty() {
        return Ok(found);
    }
    let (w, h) = img.dimensions();
    let side = w.max(h);
    if side < 1000 {
        let up = image::imageops::resize(img, w * 2, h * 2, image::imageops::FilterType::Triangle);
        let found = scan_once(&binarize(&up));
        if !found.is_empty() {
            return Ok(found);
        }
    }
    // Jagged edges (a code rotated by an odd angle, say) can defeat the
    // finder at full size; smoothing them by scaling to 3/4 helps.
    if (400..=1200).contains(&side) {
        let smooth = image::imageops::resize(
            img,
            w * 3 / 4,
            h * 3 / 4,
            image::imageops::FilterType::Triangle,
        );
        let found = scan_once(&smooth);
        if !found.is_empty() {
            return Ok(found);
        }
    }
    // Large photos: detection works better at a moderate resolution.
    let mut target = side;
    while target > 1200 {
        target /= 2;
        let small = image::imageops::resize(
            img,
            w * target / side,
            h * target / side,
            image::imageops::FilterType::Triangle,
        );
        let found = scan_once(&small);
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Err(ImageError::NotFound)
}

/// Black and white at Otsu's threshold.
fn binarize(img: &GrayImage) -> GrayImage {
    let mut hist = [0_u64; 256];
    for p in img.pixels() {
        hist[usize::from(p.0[0])] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum_all: u64 = hist.iter().enumerate().map(|(i, &n)| i as u64 * n).sum();
    let (mut w_b, mut sum_b, mut best, mut threshold) = (0_u64, 0_u64, 0_u128, 128_u8);
    for (t, &n) in hist.iter().enumerate() {
        w_b += n;
        if w_b == 0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0 {
            break;
        }
        sum_b += t as u64 * n;
        let m_b = sum_b / w_b;
        let m_f = (sum_all - sum_b) / w_f;
        let diff = u128::from(m_b.abs_diff(m_f));
        let between = u128::from(w_b) * u128::from(w_f) * diff * diff;
        if between > best {
            best = between;
            threshold = t as u8;
        }
    }
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0[0] = if p.0[0] > threshold { 255 } else { 0 };
    }
    out
}

fn scan_once(img: &GrayImage) -> Vec<Scanned> {
    let mut prepared = rqrr::PreparedImage::prepare(img.clone());
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| {
            let b = g.bounds;
            let (meta, payload) = g.decode().ok()?;
            Some(Scanned {
                payload,
                version: meta.version.0,
                corners: [
                    (b[0].x, b[0].y),
                    (b[1].x, b[1].y),
                    (b[2].x, b[2].y),
                    (b[3].x, b[3].y),
                ],
            })
        })
        .collect()
}
