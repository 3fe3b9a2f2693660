//! Native tests of the enrichment logic. The state store here is an in-memory FAKE
//! ([`FakeStore`]) that implements the documented semantics (conditions, fencing tokens, vdel),
//! not the host's store; the host's own store has its own tests.

use std::collections::BTreeMap;

use super::*;

/// One recorded `set` call: key, value, fencing token, condition, expiry.
type SetCall = (String, String, Option<Hlc>, SetCondition, Option<u64>);

/// In-memory fake of the state store (see the module doc).
#[derive(Default)]
struct FakeStore {
    entries: BTreeMap<String, (Vec<u8>, Hlc)>,
    clock: u64,
    sets: Vec<SetCall>,
    vdels: Vec<(String, String, Option<Hlc>)>,
    fail_gets: bool,
}

impl FakeStore {
    fn value(&self, key: &str) -> Option<String> {
        self.entries
            .get(key)
            .map(|(v, _)| String::from_utf8_lossy(v).into_owned())
    }

    fn put(&mut self, key: &str, value: &str) {
        self.clock += 1;
        let version = Hlc {
            secs: self.clock,
            ..Hlc::default()
        };
        self.entries
            .insert(key.to_owned(), (value.as_bytes().to_vec(), version));
    }
}

impl StateStore for FakeStore {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if self.fail_gets {
            return Err("timeout".into());
        }
        Ok(self.entries.get(key).map(|(v, _)| v.clone()))
    }

    fn set(
        &mut self,
        key: &str,
        value: &[u8],
        fencing_token: Option<&Hlc>,
        condition: SetCondition,
        expires_millis: Option<u64>,
    ) -> Result<SetResponse, String> {
        self.sets.push((
            key.to_owned(),
            String::from_utf8_lossy(value).into_owned(),
            fencing_token.cloned(),
            condition,
            expires_millis,
        ));
        let existing = self.entries.get(key);
        let allowed = match condition {
            SetCondition::Unconditional => true,
            SetCondition::OnlyIfDoesNotExist => existing.is_none(),
            SetCondition::OnlyIfEqualOrDoesNotExist => existing.is_none_or(|(v, _)| v == value),
        };
        let fenced = match (fencing_token, existing) {
            (Some(token), Some((_, version))) => token.order_key() < version.order_key(),
            _ => false,
        };
        if !allowed || fenced {
            return Ok(SetResponse {
                applied: false,
                version: None,
            });
        }
        self.clock += 1;
        let version = Hlc {
            secs: self.clock,
            counter: 0,
            nanos: 0,
            node_id: "fake".into(),
        };
        self.entries.insert(key.to_owned(), (value.to_vec(), version.clone()));
        Ok(SetResponse {
            applied: true,
            version: Some(version),
        })
    }

    fn vdel(&mut self, key: &str, value: &[u8], fencing_token: Option<&Hlc>) -> Result<i64, String> {
        self.vdels.push((
            key.to_owned(),
            String::from_utf8_lossy(value).into_owned(),
            fencing_token.cloned(),
        ));
        match self.entries.get(key) {
            None => Ok(0),
            Some((v, _)) if v != value => Ok(-1),
            Some(_) => {
                self.entries.remove(key);
                Ok(1)
            }
        }
    }
}

const OWNER: &str = "enrichment-test-instance";

fn run(payload: &str, store: &mut FakeStore) -> (String, Vec<String>) {
    let out = enrich(payload.as_bytes(), store, OWNER).expect("enrich");
    (String::from_utf8(out.payload).expect("utf-8"), out.warnings)
}

fn window(temperature: &str, humidity: &str) -> String {
    format!(
        r#"{{"sensor_data":{{"temperature":[{temperature}],"humidity":[{humidity}],"object":[{{"result":"cat"}}]}}}}"#
    )
}

#[test]
fn hot_window_sets_flag_removes_value_and_counts_under_the_lock() {
    let mut store = FakeStore::default();
    let input = window(
        r#"{"value":120.0,"count":2,"max":120.0,"min":90.0,"average":105.0,"last":120.0,"unit":"C","overtemp":false}"#,
        "",
    );
    let (out, warnings) = run(&input, &mut store);
    assert_eq!(
        out,
        r#"{"temperature":[{"count":2,"max":120.0,"min":90.0,"average":105.0,"last":120.0,"unit":"C","overtemp":true}],"object":[{"result":"cat"}]}"#
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(store.value(OVERTEMP_KEY).as_deref(), Some("true"));
    assert_eq!(store.value(WINDOWS_KEY).as_deref(), Some("1"));
    // The lock was taken with the lock condition and expiry, and released.
    assert_eq!(store.value(LOCK_KEY), None);
    let lock = store.sets.iter().find(|s| s.0 == LOCK_KEY).expect("lock set");
    assert_eq!(
        (lock.1.as_str(), lock.3, lock.4),
        (OWNER, SetCondition::OnlyIfEqualOrDoesNotExist, Some(10_000))
    );
    // The counter write carried the lock's version as its fencing token, and so did the vdel.
    let lock_index = store.sets.iter().position(|s| s.0 == LOCK_KEY).expect("lock");
    let counter = store.sets.iter().find(|s| s.0 == WINDOWS_KEY).expect("counter set");
    assert!(store.sets.iter().position(|s| s.0 == WINDOWS_KEY).expect("counter") > lock_index);
    let token = counter.2.clone().expect("fencing token");
    assert_eq!(store.vdels, vec![(LOCK_KEY.to_owned(), OWNER.to_owned(), Some(token))]);

    // A second hot window counts to 2.
    run(&input, &mut store);
    assert_eq!(store.value(WINDOWS_KEY).as_deref(), Some("2"));
}

#[test]
fn temperature_only_window_has_only_temperature() {
    // One 1209 °F reading through the complex graph: collection writes only `temperature`, and
    // the published document must carry no `humidity` or `object` key.
    let mut store = FakeStore::default();
    let (out, warnings) = run(
        r#"{"sensor_data":{"temperature":[{"count":1,"max":653.8888888888889,"min":653.8888888888889,"average":653.8888888888889,"last":653.8888888888889,"unit":"C","overtemp":false}]}}"#,
        &mut store,
    );
    assert_eq!(
        out,
        r#"{"temperature":[{"count":1,"max":653.8888888888889,"min":653.8888888888889,"average":653.8888888888889,"last":653.8888888888889,"unit":"C","overtemp":true}]}"#
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(store.value(OVERTEMP_KEY).as_deref(), Some("true"));
    assert_eq!(store.value(WINDOWS_KEY).as_deref(), Some("1"));
}

#[test]
fn empty_window_gives_an_empty_document() {
    let mut store = FakeStore::default();
    let (out, warnings) = run(r#"{"sensor_data":{}}"#, &mut store);
    assert_eq!(out, "{}");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(store.sets.is_empty());
}

#[test]
fn cold_window_clears_the_flag_and_is_not_counted() {
    let mut store = FakeStore::default();
    store.put(OVERTEMP_KEY, "true");
    let (out, _) = run(
        &window(
            r#"{"count":1,"max":5.0,"min":-3.5,"average":1.0,"last":-3.5,"unit":"C","overtemp":true}"#,
            "",
        ),
        &mut store,
    );
    assert_eq!(
        out,
        r#"{"temperature":[{"count":1,"max":5.0,"min":-3.5,"average":1.0,"last":-3.5,"unit":"C","overtemp":false}],"object":[{"result":"cat"}]}"#
    );
    assert_eq!(store.value(OVERTEMP_KEY).as_deref(), Some("false"));
    assert_eq!(store.value(WINDOWS_KEY), None);
    assert!(store.sets.iter().all(|s| s.0 != LOCK_KEY));
}

#[test]
fn mild_window_uses_the_stored_flag() {
    let mild = r#"{"count":1,"max":50.0,"min":40.0,"average":45.0,"last":40.0,"unit":"C"}"#;
    // Nothing stored: false, nothing written.
    let mut fresh = FakeStore::default();
    let (out, _) = run(&window(mild, ""), &mut fresh);
    assert!(out.contains(r#""unit":"C","overtemp":false}"#), "{out}");
    assert!(fresh.sets.is_empty());
    // Stored "true" (an earlier hot window): still over temperature, and counted.
    let mut hot = FakeStore::default();
    hot.put(OVERTEMP_KEY, "true");
    let (out, _) = run(&window(mild, ""), &mut hot);
    assert!(out.contains(r#""unit":"C","overtemp":true}"#), "{out}");
    assert_eq!(hot.value(WINDOWS_KEY).as_deref(), Some("1"));
}

#[test]
fn flag_is_sticky_across_records_of_one_window() {
    let mut store = FakeStore::default();
    let records = concat!(
        r#"{"count":1,"max":150.0,"min":150.0,"average":150.0,"last":150.0,"unit":"C"},"#,
        r#"{"count":1,"max":50.0,"min":50.0,"average":50.0,"last":50.0,"unit":"C"}"#
    );
    let (out, _) = run(&window(records, ""), &mut store);
    assert_eq!(out.matches(r#""overtemp":true"#).count(), 2, "{out}");
    // Read never needed, written once.
    assert_eq!(store.sets.iter().filter(|s| s.0 == OVERTEMP_KEY).count(), 1);
}

#[test]
fn wet_humidity_sets_the_wet_flag() {
    let mut store = FakeStore::default();
    run(
        &window("", r#"{"count":1,"max":80.0,"min":80.0,"average":80.0,"last":80.0}"#),
        &mut store,
    );
    assert_eq!(store.value(WET_FLAG_KEY), None, "80 is not above 80");
    let (out, _) = run(
        &window("", r#"{"count":1,"max":80.5,"min":80.5,"average":80.5,"last":80.5}"#),
        &mut store,
    );
    assert_eq!(store.value(WET_FLAG_KEY).as_deref(), Some("true"));
    assert_eq!(
        out,
        r#"{"humidity":[{"count":1,"max":80.5,"min":80.5,"average":80.5,"last":80.5}],"object":[{"result":"cat"}]}"#
    );
}

#[test]
fn busy_lock_skips_the_count_with_a_warning() {
    let mut store = FakeStore::default();
    store.put(LOCK_KEY, "another-instance");
    let (_, warnings) = run(
        &window(
            r#"{"count":1,"max":101.0,"min":101.0,"average":101.0,"last":101.0,"unit":"C"}"#,
            "",
        ),
        &mut store,
    );
    assert_eq!(store.value(WINDOWS_KEY), None);
    assert_eq!(store.value(LOCK_KEY).as_deref(), Some("another-instance"));
    assert!(store.vdels.is_empty());
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("held by another instance"));
}

#[test]
fn outdated_fencing_token_is_refused_by_the_store() {
    let mut store = FakeStore::default();
    let mut warnings = Vec::new();
    // A writer with a newer version got to the counter after our lock was granted.
    store.put(LOCK_KEY, OWNER);
    store.clock += 10;
    store.put(WINDOWS_KEY, "7");
    store.entries.remove(LOCK_KEY);
    // Our lock version (clock 13) is newer than the counter's (12): accepted.
    let counted = count_overtemp_window(&mut store, OWNER, &mut warnings).expect("count");
    assert_eq!(counted.map(|c| (c.count, c.token.is_some())), Some((8, true)));
    assert_eq!(store.value(WINDOWS_KEY).as_deref(), Some("8"));
    assert!(warnings.is_empty(), "{warnings:?}");
    // Now make the counter newer than any token we will get next: refused, with a warning.
    store.entries.insert(
        WINDOWS_KEY.into(),
        (
            b"8".to_vec(),
            Hlc {
                secs: 1_000,
                ..Hlc::default()
            },
        ),
    );
    let counted = count_overtemp_window(&mut store, OWNER, &mut warnings).expect("count");
    assert_eq!(counted, None, "a refused update counted nothing");
    assert_eq!(store.value(WINDOWS_KEY).as_deref(), Some("8"));
    assert!(warnings[0].contains("refused"), "{warnings:?}");
    assert_eq!(store.value(LOCK_KEY), None, "released even when the update was refused");
}

#[test]
fn invalid_input_and_store_failures_are_errors() {
    let mut store = FakeStore::default();
    let err = enrich(br#"{"temperature":{"value":1,"unit":"C"}}"#, &mut store, OWNER).expect_err("not sensor_data");
    assert!(err.starts_with("the payload is not a sensor_data document"), "{err}");
    assert!(enrich(b"\x00\x01", &mut store, OWNER).is_err());
    store.fail_gets = true;
    let err = enrich(
        window(
            r#"{"count":1,"max":50.0,"min":40.0,"average":45.0,"last":40.0,"unit":"C"}"#,
            "",
        )
        .as_bytes(),
        &mut store,
        OWNER,
    )
    .expect_err("store down");
    assert_eq!(err, "state-store get `overtemp` failed: timeout");
}
