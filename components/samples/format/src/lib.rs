//! The `format` sample module: a map that turns an image payload into the fixed input an image
//! classifier expects: a 224×224 RGB24 `snapshot`.
//!
//! Accepted payloads: PNG or JPEG (decoded with the `image` crate, only those two codecs
//! compiled in), or raw 224×224 RGB24 (exactly 150,528 bytes). Resizing uses the Triangle
//! (bilinear) filter: deterministic, so replays give the same frame.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};

/// Width and height of every output frame.
pub const SIZE: u32 = 224;
/// Bytes of one output frame: 224 × 224 × 3.
pub const FRAME_LEN: usize = (SIZE * SIZE * 3) as usize;
/// The `format` field of the output snapshot.
pub const FORMAT: &str = "rgb24";
/// Decoding refuses images that would need more memory than this (a guard against images that
/// are small on the wire and huge decoded).
pub const MAX_DECODE_BYTES: u64 = 128 * 1024 * 1024;

/// The frame of a payload: a decoded and resized PNG/JPEG, or raw RGB24 of the right size as is.
pub fn to_frame(payload: &[u8]) -> Result<Vec<u8>, String> {
    let format = image::guess_format(payload)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg));
    let Some(format) = format else {
        if payload.len() == FRAME_LEN {
            return Ok(payload.to_vec());
        }
        return Err(format!(
            "the payload is neither a PNG or JPEG image nor raw {SIZE}x{SIZE} RGB24 ({FRAME_LEN} bytes); got {} bytes",
            payload.len()
        ));
    };
    let mut reader = ImageReader::with_format(Cursor::new(payload), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| format!("the payload looks like {format:?} but does not decode: {e}"))?;
    let rgb = image.into_rgb8();
    let rgb = if rgb.width() == SIZE && rgb.height() == SIZE {
        rgb
    } else {
        image::imageops::resize(&rgb, SIZE, SIZE, FilterType::Triangle)
    };
    Ok(rgb.into_raw())
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue on the SDK: the map operator.
    use sample_common::glue::{bytes_of, error, log_init, string_of};
    use wasm_graph_sdk::macros::map_operator;

    use crate::{FORMAT, SIZE};

    const CONTEXT: &str = "format/map";

    fn init(configuration: ModuleConfiguration) -> bool {
        log_init(CONTEXT, &configuration);
        true
    }

    #[map_operator(init = "init")]
    fn to_snapshot(message: DataModel) -> Result<DataModel, Error> {
        match message {
            DataModel::Message(message) => {
                let frame =
                    crate::to_frame(&bytes_of(&message.payload)).map_err(|e| error(format!("{CONTEXT}: {e}")))?;
                Ok(DataModel::Snapshot(Snapshot {
                    timestamp: message.timestamp,
                    format: BufferOrString::String(FORMAT.to_owned()),
                    width: SIZE,
                    height: SIZE,
                    frame: BufferOrBytes::Bytes(frame),
                }))
            }
            DataModel::Snapshot(snapshot) => {
                let format_ok = string_of(&snapshot.format).is_ok_and(|f| f == FORMAT);
                if format_ok && snapshot.width == SIZE && snapshot.height == SIZE {
                    Ok(DataModel::Snapshot(snapshot))
                } else {
                    Err(error(format!(
                        "{CONTEXT}: a snapshot passes only when it already is {FORMAT} {SIZE}x{SIZE} (got {}x{})",
                        snapshot.width, snapshot.height
                    )))
                }
            }
            DataModel::BufferOrBytes(_) => Err(error(format!(
                "{CONTEXT}: expects a message (the snapshot takes its timestamp), got a bare payload"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).expect("encode");
        bytes.into_inner()
    }

    #[test]
    fn png_is_resized_to_a_224_frame() {
        let small = RgbImage::from_fn(10, 10, |x, y| Rgb([(x * 25) as u8, (y * 25) as u8, 200]));
        let frame = to_frame(&encode(&small, ImageFormat::Png)).expect("png");
        assert_eq!(frame.len(), 150_528);
        // Deterministic: the same input gives the same frame.
        assert_eq!(frame, to_frame(&encode(&small, ImageFormat::Png)).expect("png"));
        // Corners keep the corner colours' order (dark top-left, bright bottom-right red/green).
        assert!(frame[0] < frame[FRAME_LEN - 3]);
        // The blue channel is constant in the source, so it is constant after interpolation.
        assert!(frame.chunks(3).all(|p| p[2] == 200));
    }

    #[test]
    fn solid_jpeg_stays_solid() {
        let solid = RgbImage::from_pixel(32, 16, Rgb([128, 128, 128]));
        let frame = to_frame(&encode(&solid, ImageFormat::Jpeg)).expect("jpeg");
        assert_eq!(frame.len(), FRAME_LEN);
        // JPEG is lossy: allow a small error around the grey.
        assert!(frame.iter().all(|&c| (126..=130).contains(&c)));
    }

    #[test]
    fn exact_size_png_is_not_resampled() {
        let image = RgbImage::from_fn(SIZE, SIZE, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
        assert_eq!(
            to_frame(&encode(&image, ImageFormat::Png)).expect("png"),
            image.into_raw()
        );
    }

    #[test]
    fn raw_rgb24_passes_as_is() {
        let raw: Vec<u8> = (0..FRAME_LEN).map(|i| (i % 251) as u8).collect();
        assert_eq!(to_frame(&raw).expect("raw"), raw);
    }

    #[test]
    fn garbage_is_an_error() {
        let err = to_frame(b"definitely not an image").expect_err("garbage");
        assert_eq!(
            err,
            "the payload is neither a PNG or JPEG image nor raw 224x224 RGB24 (150528 bytes); got 23 bytes"
        );
        assert!(to_frame(&[0u8; FRAME_LEN - 1]).is_err());
        // A PNG signature followed by garbage: recognised, but fails to decode.
        let err = to_frame(b"\x89PNG\r\n\x1a\nbroken").expect_err("broken png");
        assert!(
            err.starts_with("the payload looks like Png but does not decode"),
            "{err}"
        );
    }
}
