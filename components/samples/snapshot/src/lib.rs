//! The `snapshot` sample module: the image path of the complex graph.
//!
//! * `map`: classifies a snapshot (or a message whose payload is a PNG/JPEG image) through
//!   wasi-nn and emits `{"object":{"result":"<label>"}}`. The image is turned into the model's
//!   input the way scikit-learn's `load_digits()` images are: grayscale, area-averaged down to
//!   8×8, scaled to 0..16 (bright strokes on a dark ground, as the data set's values are).
//! * `branch`: `true` for snapshots, for messages on the `snapshot_topic` parameter's topic, and
//!   for messages whose payload is a PNG or JPEG image; `false` for everything else.
//! * `accumulate`: joins the distinct labels of a window, in order of first appearance, with
//!   `"; "` into one `{"object":{"result":"3; 7"}}`.
//!
//! The model is embedded in the module (`graph.load`, the digits classifier
//! `scripts/build-model.py` builds) unless the `model` parameter names a model the host
//! preloaded (`wasmflow run --model NAME=PATH`, `graph.load-by-name`). It is loaded on the first
//! item, not in `init`, so a model that does not load is each item's error and the rest of the
//! graph keeps running.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use serde_json::{Map, Value};

/// The model input's side: 8×8 pixels, as `load_digits()`.
pub const SIDE: usize = 8;
/// Largest pixel value of the model's input scale (`load_digits()` uses 0..16).
pub const SCALE: f32 = 16.0;
/// Decoding refuses images that would need more memory than this.
pub const MAX_DECODE_BYTES: u64 = 64 * 1024 * 1024;
/// The labels of the digits model's ten outputs.
pub const DIGIT_LABELS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// A grayscale image, one byte per pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// The grayscale of a snapshot frame: `rgb24` (3 bytes per pixel, ITU-R BT.601 luma) or
/// `gray8`/`l8` (1 byte per pixel). The frame length must match the dimensions.
pub fn frame_to_gray(format: &str, width: u32, height: u32, frame: &[u8]) -> Result<Gray, String> {
    let (width, height) = (width as usize, height as usize);
    if width == 0 || height == 0 {
        return Err(format!("the snapshot is {width}x{height}: nothing to classify"));
    }
    let channels = match format {
        "rgb24" => 3,
        "gray8" | "l8" => 1,
        other => return Err(format!("snapshot format `{other}` is not supported (rgb24, gray8)")),
    };
    let expected = width.checked_mul(height).and_then(|n| n.checked_mul(channels));
    if expected != Some(frame.len()) {
        return Err(format!(
            "a {width}x{height} {format} snapshot needs {} bytes, the frame has {}",
            expected.map_or_else(|| "too many".to_string(), |n| n.to_string()),
            frame.len()
        ));
    }
    let pixels = if channels == 1 {
        frame.to_vec()
    } else {
        frame.chunks_exact(3).map(|p| luma(p[0], p[1], p[2])).collect()
    };
    Ok(Gray { width, height, pixels })
}

/// BT.601 luma, rounded; a gray pixel (r = g = b) keeps its value.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    let y = (299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000;
    y.min(255) as u8
}

/// Whether a payload starts like a PNG or JPEG file.
pub fn looks_like_image(payload: &[u8]) -> bool {
    matches!(
        image::guess_format(payload),
        Ok(ImageFormat::Png) | Ok(ImageFormat::Jpeg)
    )
}

/// Decodes a PNG or JPEG payload to grayscale; anything else is an error that says what it got.
pub fn decode_image(payload: &[u8]) -> Result<Gray, String> {
    if !looks_like_image(payload) {
        let preview: String = String::from_utf8_lossy(&payload[..payload.len().min(24)])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        return Err(format!(
            "the payload is not a PNG or JPEG image ({} bytes, starting {preview:?})",
            payload.len()
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(payload))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| format!("the payload looks like an image but does not decode: {e}"))?;
    let luma = image.into_luma8();
    Ok(Gray {
        width: luma.width() as usize,
        height: luma.height() as usize,
        pixels: luma.into_raw(),
    })
}

/// The model input: the image area-averaged to 8×8 (every source pixel counts with the share of
/// its area inside each cell, so any size works and an 8×8 image passes unchanged), scaled from
/// 0..255 to 0..16.
pub fn to_model_input(gray: &Gray) -> [f32; SIDE * SIDE] {
    let mut out = [0f32; SIDE * SIDE];
    let (w, h) = (gray.width as f64, gray.height as f64);
    let (cw, ch) = (w / SIDE as f64, h / SIDE as f64);
    for cy in 0..SIDE {
        let (y0, y1) = (cy as f64 * ch, (cy + 1) as f64 * ch);
        for cx in 0..SIDE {
            let (x0, x1) = (cx as f64 * cw, (cx + 1) as f64 * cw);
            let mut sum = 0f64;
            for py in (y0.floor() as usize)..(y1.ceil() as usize).min(gray.height) {
                let wy = (y1.min(py as f64 + 1.0) - y0.max(py as f64)).max(0.0);
                for px in (x0.floor() as usize)..(x1.ceil() as usize).min(gray.width) {
                    let wx = (x1.min(px as f64 + 1.0) - x0.max(px as f64)).max(0.0);
                    sum += wx * wy * gray.pixels[py * gray.width + px] as f64;
                }
            }
            let mean = sum / (cw * ch);
            out[cy * SIDE + cx] = (mean * SCALE as f64 / 255.0) as f32;
        }
    }
    out
}

/// The little-endian bytes of an FP32 tensor (shared with every operator that runs a model).
pub use sample_common::tensor::f32_bytes;

/// The label of the highest score in an FP32 output tensor (little-endian bytes).
pub fn best_label(output: &[u8], labels: &[String]) -> Result<String, String> {
    if output.is_empty() || !output.len().is_multiple_of(4) {
        return Err(format!(
            "the model's output is {} bytes, not a list of FP32 scores",
            output.len()
        ));
    }
    if output.len() / 4 != labels.len() {
        return Err(format!(
            "the model gives {} scores, but there are {} labels",
            output.len() / 4,
            labels.len()
        ));
    }
    // Read in place: no vector of the scores per inference.
    let scores = output
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    // The first of equal maxima wins (as numpy's argmax); NaN never wins.
    let mut best: Option<(usize, f32)> = None;
    for (i, s) in scores.enumerate() {
        if !s.is_nan() && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| labels[i].clone())
        .ok_or_else(|| "the model's scores are all NaN".to_string())
}

/// Labels from the `labels` parameter (comma-separated), the digits 0..9 when unset.
pub fn parse_labels(parameter: Option<&str>) -> Result<Vec<String>, String> {
    match parameter.map(str::trim) {
        None | Some("") => Ok(DIGIT_LABELS.iter().map(|l| l.to_string()).collect()),
        Some(list) => {
            let labels: Vec<String> = list.split(',').map(|l| l.trim().to_string()).collect();
            if labels.iter().any(String::is_empty) {
                return Err(format!("`labels` has an empty label: {list:?}"));
            }
            Ok(labels)
        }
    }
}

/// The record the map emits for a label: `{"object":{"result":"<label>"}}`.
pub fn object_record(label: &str) -> Vec<u8> {
    let mut object = Map::new();
    object.insert("result".into(), Value::String(label.into()));
    let mut record = Map::new();
    record.insert("object".into(), Value::Object(object));
    serde_json::to_vec(&Value::Object(record)).unwrap_or_default()
}

/// Joins the distinct labels of a window (the staged value first, then the items in order)
/// with `"; "`. Items that are no `{"object":{"result":…}}` record are warnings, not errors; a
/// window with no label at all is an error (its items become dead letters).
pub fn accumulate(staged: Option<&[u8]>, items: &[Option<&[u8]>]) -> Result<sample_common::Folded, String> {
    let mut labels: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    let mut add = |result: &str| {
        for label in result.split("; ").filter(|l| !l.is_empty()) {
            if !labels.iter().any(|l| l == label) {
                labels.push(label.to_string());
            }
        }
    };
    if let Some(staged) = staged {
        let result = result_of(staged).map_err(|e| format!("the staged value: {e}"))?;
        add(&result);
    }
    for (index, item) in items.iter().enumerate() {
        match item.map(result_of) {
            Some(Ok(result)) => add(&result),
            Some(Err(e)) => warnings.push(format!("batch item {index}: {e}; ignored")),
            None => warnings.push(format!("batch item {index} is a snapshot, not a label; ignored")),
        }
    }
    if labels.is_empty() {
        return Err(sample_common::no_readings("object", items.len()));
    }
    Ok(sample_common::Folded {
        payload: object_record(&labels.join("; ")),
        warnings,
    })
}

/// The `result` string of an `{"object":{"result":…}}` record.
fn result_of(payload: &[u8]) -> Result<String, String> {
    let record = sample_common::json::parse_object(payload)?;
    match record.get("object").and_then(|o| o.get("result")) {
        Some(Value::String(result)) => Ok(result.clone()),
        Some(other) => Err(format!(
            "`object.result` is {}, expected a string",
            sample_common::json::kind(other)
        )),
        None => Err("no `object.result` label".to_string()),
    }
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
        let image = image::GrayImage::from_fn(width, height, |x, y| image::Luma([f(x, y)]));
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, ImageFormat::Png).expect("encode");
        bytes.into_inner()
    }

    #[test]
    fn an_8x8_image_keeps_its_values_on_the_0_to_16_scale() {
        let gray = decode_image(&png(8, 8, |x, y| (x * 32 + y) as u8)).expect("png");
        let input = to_model_input(&gray);
        for y in 0..8 {
            for x in 0..8 {
                let expected = (x * 32 + y) as f32 * 16.0 / 255.0;
                assert!((input[y * 8 + x] - expected).abs() < 1e-5, "({x},{y})");
            }
        }
        assert_eq!(
            to_model_input(&Gray {
                width: 8,
                height: 8,
                pixels: vec![255; 64]
            }),
            [16.0; 64]
        );
    }

    #[test]
    fn larger_images_are_area_averaged() {
        // 224x224 (the `format` frame): each 28x28 block averages to one input pixel.
        let gray = Gray {
            width: 224,
            height: 224,
            pixels: (0..224 * 224)
                .map(|i| if (i % 224) / 28 == 3 { 255 } else { 0 })
                .collect(),
        };
        let input = to_model_input(&gray);
        for (i, v) in input.iter().enumerate() {
            assert_eq!(*v, if i % 8 == 3 { 16.0 } else { 0.0 }, "cell {i}");
        }
        // A size that does not divide by 8: a uniform image stays uniform.
        let odd = Gray {
            width: 13,
            height: 5,
            pixels: vec![51; 65],
        };
        assert!(to_model_input(&odd).iter().all(|v| (v - 3.2).abs() < 1e-4));
    }

    #[test]
    fn rgb24_frames_become_luma_and_bad_frames_are_errors() {
        let gray = frame_to_gray("rgb24", 2, 1, &[10, 10, 10, 255, 0, 0]).expect("rgb");
        assert_eq!(gray.pixels, vec![10, 76]);
        assert_eq!(
            frame_to_gray("rgb24", 224, 224, &[0; 10]).expect_err("short"),
            "a 224x224 rgb24 snapshot needs 150528 bytes, the frame has 10"
        );
        assert!(frame_to_gray("yuv420", 2, 2, &[0; 6])
            .expect_err("format")
            .contains("yuv420"));
        assert!(frame_to_gray("rgb24", 0, 2, &[]).is_err());
    }

    #[test]
    fn non_images_are_named_errors() {
        let e = decode_image(br#"{"temperature":{"value":20}}"#).expect_err("json");
        assert!(e.starts_with("the payload is not a PNG or JPEG image (28 bytes"), "{e}");
        let e = decode_image(b"\x89PNG\r\n\x1a\ngarbage").expect_err("broken");
        assert!(
            e.starts_with("the payload looks like an image but does not decode"),
            "{e}"
        );
        assert!(looks_like_image(&png(1, 1, |_, _| 0)));
        assert!(!looks_like_image(b"hello"));
    }

    #[test]
    fn the_best_score_names_the_label() {
        let labels = parse_labels(None).expect("digits");
        let mut scores = [0.01f32; 10];
        scores[7] = 0.9;
        assert_eq!(best_label(&f32_bytes(&scores), &labels), Ok("7".into()));
        assert!(best_label(&f32_bytes(&scores[..9]), &labels)
            .expect_err("count")
            .contains("9 scores, but there are 10 labels"));
        assert!(best_label(&[0, 0, 0], &labels).is_err());
        assert!(best_label(&f32_bytes(&[f32::NAN; 10]), &labels).is_err());
        assert_eq!(
            parse_labels(Some("cat, dog")).expect("two"),
            vec!["cat".to_string(), "dog".to_string()]
        );
        assert!(parse_labels(Some("cat,,dog")).is_err());
    }

    #[test]
    fn accumulate_joins_distinct_labels_in_order() {
        let items: Vec<Vec<u8>> = ["3", "7", "3", "1"].iter().map(|l| object_record(l)).collect();
        let views: Vec<Option<&[u8]>> = items.iter().map(|i| Some(i.as_slice())).collect();
        let out = accumulate(None, &views).expect("labels");
        assert_eq!(
            String::from_utf8(out.payload).unwrap(),
            r#"{"object":{"result":"3; 7; 1"}}"#
        );
        assert!(out.warnings.is_empty());
        // Staged labels come first and are not repeated.
        let staged = object_record("7; 9");
        let out = accumulate(Some(&staged), &views[..2]).expect("staged");
        assert_eq!(
            String::from_utf8(out.payload).unwrap(),
            r#"{"object":{"result":"7; 9; 3"}}"#
        );
        // Non-label items are warnings; a window with no label is an error.
        let out = accumulate(None, &[Some(b"{\"humidity\":{}}"), None, views[0]]).expect("one");
        assert_eq!(String::from_utf8(out.payload).unwrap(), r#"{"object":{"result":"3"}}"#);
        assert_eq!(out.warnings.len(), 2);
        assert!(accumulate(None, &[Some(b"{}")]).is_err());
    }
}
