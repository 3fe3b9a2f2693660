//! The `humidity` sample module: an accumulate folding humidity readings into statistics, the
//! same statistics `temperature` keeps (without unit and overtemp).

use sample_common::json;
use sample_common::records::{parse_humidity, HumidityPayload, HumidityRecord};
use sample_common::stats;
use sample_common::Folded;

/// The accumulate: folds the batch's humidity readings (in batch order) into the staged record,
/// if any, and writes `{"humidity":{count,max,min,average,last}}`. Other items are ignored with
/// a warning; a staged value that is not a humidity record is an error (a miswired graph).
/// When neither the batch nor the staged record holds a reading the window is an error, not a
/// record of zeros: whatever was routed here becomes a dead letter (see [`stats::fold`]).
pub fn accumulate(staged: Option<&[u8]>, items: &[Option<&[u8]>]) -> Result<Folded, String> {
    stats::fold(
        "humidity",
        staged,
        items,
        |payload| parse_humidity(payload).map(|record| record.stats()),
        |stats| {
            json::to_bytes(&HumidityPayload {
                humidity: HumidityRecord::summary(stats),
            })
        },
    )
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue on the SDK: the accumulate operator.
    use sample_common::glue::log_init;
    use wasm_graph_sdk::macros::accumulate_operator;

    const CONTEXT: &str = "humidity/accumulate";

    fn init(configuration: ModuleConfiguration) -> bool {
        log_init(CONTEXT, &configuration);
        true
    }

    #[accumulate_operator(init = "init")]
    fn fold(staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
        sample_common::glue::accumulate(CONTEXT, staged, message, crate::accumulate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(staged: Option<&[u8]>, items: &[Option<&[u8]>]) -> (String, Vec<String>) {
        let f = accumulate(staged, items).expect("fold");
        (String::from_utf8(f.payload).expect("utf-8"), f.warnings)
    }

    #[test]
    fn three_readings() {
        let items: [Option<&[u8]>; 3] = [
            Some(br#"{"humidity":{"value":40}}"#),
            Some(br#"{"humidity":{"value":85.5}}"#),
            Some(br#"{"humidity":{"value":60.5}}"#),
        ];
        // count 3, max 85.5, min 40, average 186/3 = 62, last 60.5.
        let (out, warnings) = folded(None, &items);
        assert_eq!(
            out,
            r#"{"humidity":{"count":3,"max":85.5,"min":40.0,"average":62.0,"last":60.5}}"#
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn staged_record_is_folded_count_weighted() {
        let staged = br#"{"humidity":{"count":1,"max":50.0,"min":50.0,"average":50.0,"last":50.0}}"#;
        let items: [Option<&[u8]>; 1] = [Some(br#"{"humidity":{"value":30}}"#)];
        let (out, _) = folded(Some(staged), &items);
        assert_eq!(
            out,
            r#"{"humidity":{"count":2,"max":50.0,"min":30.0,"average":40.0,"last":30.0}}"#
        );
    }

    #[test]
    fn other_items_are_ignored_with_warnings() {
        let items: [Option<&[u8]>; 3] = [
            Some(br#"{"temperature":{"value":1,"unit":"C"}}"#),
            None,
            Some(br#"{"humidity":{"value":55}}"#),
        ];
        let (out, warnings) = folded(None, &items);
        assert_eq!(
            out,
            r#"{"humidity":{"count":1,"max":55.0,"min":55.0,"average":55.0,"last":55.0}}"#
        );
        assert_eq!(
            warnings,
            vec![
                "batch item 0 is not a humidity (38 bytes); ignored".to_owned(),
                "batch item 1 is not a humidity (a snapshot); ignored".to_owned()
            ]
        );
    }

    #[test]
    fn a_window_without_readings_is_an_error() {
        let items: [Option<&[u8]>; 2] = [Some(b"not json"), None];
        assert_eq!(
            accumulate(None, &items).expect_err("no readings"),
            "no humidity readings in the window (2 items ignored)"
        );
        // A parsed record that summarises nothing is no reading either.
        let empty: [Option<&[u8]>; 1] = [Some(br#"{"humidity":{"count":0}}"#)];
        assert_eq!(
            accumulate(None, &empty).expect_err("no readings"),
            "no humidity readings in the window (1 item ignored)"
        );
        // Nor is a staged record of zeros.
        let zeros = br#"{"humidity":{"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0}}"#;
        assert!(accumulate(Some(zeros), &items).is_err());
        assert!(accumulate(None, &[]).is_err());
    }

    #[test]
    fn a_staged_reading_is_enough() {
        let staged = br#"{"humidity":{"count":1,"max":50.0,"min":50.0,"average":50.0,"last":50.0}}"#;
        let items: [Option<&[u8]>; 1] = [Some(b"not json")];
        let (out, warnings) = folded(Some(staged), &items);
        assert_eq!(
            out,
            r#"{"humidity":{"count":1,"max":50.0,"min":50.0,"average":50.0,"last":50.0}}"#
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn foreign_staged_value_is_an_error() {
        assert!(accumulate(Some(b"[]"), &[])
            .expect_err("bad staged")
            .contains("not a humidity record"));
    }
}
