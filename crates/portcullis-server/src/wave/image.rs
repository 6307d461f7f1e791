//! Notification thumbnails (Adobe Wave): PNG or JPEG, at most 40×40 pixels, stored and sent
//! re-encoded as PNG. The bytes are decoded for real (the `image` crate); the format is
//! read from the bytes, not from what the caller says, and the size is read from the
//! header before any pixel is decoded.

use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest width and height of a thumbnail.
pub const MAX_SIDE: u32 = 40;
/// Largest encoded thumbnail accepted (a 40×40 image is a few KiB at most).
pub const MAX_BYTES: usize = 256 * 1024;

/// The media types the vendor allows for `imagetype` and for a fetched `imageurl`.
pub fn is_image_type(mime: &str) -> bool {
    matches!(
        mime.trim().to_ascii_lowercase().as_str(),
        "image/png" | "image/jpeg" | "image/jpg"
    )
}

/// Decode `bytes` as a PNG or JPEG of at most 40×40 and re-encode it as PNG. The error
/// says what is wrong, for the 415 response.
pub fn to_png(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "The image is larger than {} KiB; a 40×40 thumbnail needs far less.",
            MAX_BYTES / 1024
        ));
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg))
        .ok_or("The image is not a PNG or JPEG file.")?;
    let reader = |b: &[u8]| {
        let mut r = ImageReader::with_format(Cursor::new(b.to_vec()), format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(4 * 1024 * 1024);
        r.limits(limits);
        r
    };
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("The image could not be read: {e}."))?;
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!(
            "The image is {w}×{h}; thumbnails are at most {MAX_SIDE}×{MAX_SIDE} pixels."
        ));
    }
    let img = reader(bytes)
        .decode()
        .map_err(|e| format!("The image could not be decoded: {e}."))?;
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| format!("The image could not be re-encoded: {e}."))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn png_and_jpeg_up_to_40_are_reencoded_as_png() {
        for f in [ImageFormat::Png, ImageFormat::Jpeg] {
            let png = to_png(&encoded(40, 12, f)).unwrap();
            assert_eq!(image::guess_format(&png).unwrap(), ImageFormat::Png);
            let back = image::load_from_memory(&png).unwrap();
            assert_eq!((back.width(), back.height()), (40, 12));
        }
    }

    #[test]
    fn larger_images_other_formats_and_garbage_are_refused() {
        assert!(
            to_png(&encoded(41, 41, ImageFormat::Png))
                .unwrap_err()
                .contains("41×41")
        );
        assert!(to_png(&encoded(10, 41, ImageFormat::Jpeg)).is_err());
        assert!(to_png(b"GIF89a not really").is_err());
        assert!(to_png(b"hello, world").is_err());
        let mut truncated = encoded(20, 20, ImageFormat::Png);
        truncated.truncate(40);
        assert!(to_png(&truncated).is_err());
    }
}
