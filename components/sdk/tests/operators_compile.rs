//! Compiles small operator crates against the SDK (natively, `cargo check --offline`): one that
//! uses the whole API the way the platform's operators do, and one whose functions have wrong
//! signatures, whose errors must name the operator kind and the expected signature.
//!
//! The fixture crates live under the test target's temporary directory, with their own target
//! directory (kept between runs, so only the first run compiles wit-bindgen) and this
//! workspace's Cargo.lock (so the offline resolution uses the versions already downloaded).

use std::path::PathBuf;
use std::process::Command;

/// `cargo check`s a crate whose `src/lib.rs` is `lib_rs`; its success and its diagnostics (short
/// format, one line each).
fn check(name: &str, lib_rs: &str) -> (bool, String) {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdk-fixtures");
    let dir = tmp.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let sdk = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nwasm_graph_sdk = {{ path = {sdk:?} }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::copy(PathBuf::from(sdk).join("../Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), lib_rs).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--offline", "--quiet", "--message-format", "short"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", tmp.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every kind, `init`, the host services and the data-model conveniences, in the shapes the
/// platform's published operators use them (types named unqualified inside the marked
/// function's module, `Duration` being `std::time::Duration`, `Some(&labels)` for a `Vec`,
/// `state_store::HybridLogicalClock` as a fencing token, …).
const WHOLE_API: &str = r#"
mod map_module {
    use wasm_graph_sdk::logger::{self, Level};
    use wasm_graph_sdk::macros::map_operator;
    use wasm_graph_sdk::metrics::{self, CounterValue, HistogramValue, Label};
    use wasm_graph_sdk::state_store::{self, HybridLogicalClock as Version, SetConditions, SetOptions};

    fn setup(configuration: ModuleConfiguration) -> bool {
        for (key, value) in configuration.properties.iter() {
            logger::log(Level::Debug, "fixture/map", &format!("{key}={value}"));
        }
        for schema in &configuration.module_schemas {
            logger::log(Level::Trace, "fixture/map", &format!("{schema:?} {} {}", schema.name, schema.content_type));
        }
        configuration.module_schemas.iter().all(|s| !s.content.is_empty())
    }

    fn text(value: &BufferOrString) -> String {
        match value {
            BufferOrString::Buffer(buffer) => String::from_utf8_lossy(&buffer.read()).into_owned(),
            BufferOrString::String(string) => string.clone(),
        }
    }

    #[map_operator(init = "setup")]
    fn enrich(input: DataModel) -> Result<DataModel, Error> {
        let labels = vec![Label { key: "module".to_owned(), value: "fixture/map".to_owned() }];
        let _ = metrics::add_to_counter("requests", CounterValue::U64(1), Some(&labels));
        let _ = metrics::record_to_histogram("size", HistogramValue::F64(1.5), None);
        match input {
            DataModel::Message(mut message) => {
                let payload = message.payload.read();
                let topic: Vec<u8> = message.topic.read();
                let options = SetOptions {
                    conditions: SetConditions::OnlyIfEqualOrDoesNotExist,
                    expires: Some(wasm_graph_sdk::state_store::Duration { seconds: 10, nanos: 0 }),
                };
                if let Ok(lock) = state_store::set(b"lock", b"me", None, None, options) {
                    if lock.response {
                        let token: Version = lock.version.unwrap();
                        let _ = state_store::set(b"key", &payload, None, Some(&token), SetOptions::default());
                        let _ = state_store::vdel(b"lock", b"me", Some(&token), None);
                    }
                }
                match state_store::get("key".as_bytes(), None).as_ref().map(|v| v.response.as_deref()) {
                    Ok(Some(b"x")) | Ok(Some(_)) | Ok(None) => {}
                    Err(err) => logger::log(Level::Error, "fixture/map", &format!("{err}")),
                }
                if let Ok(deleted) = state_store::del(b"key", None, None) {
                    let _: i64 = deleted.response;
                }
                let old = std::mem::take(&mut message.properties.user_properties);
                for (key, value) in old {
                    let (key, value) = (String::from(key), text(&value));
                    message.properties.user_properties.push((BufferOrString::String(key), value.into()));
                }
                for (key, value) in &mut message.properties.user_properties {
                    if text(key) == "replace" {
                        *value = BufferOrString::String("new".to_owned());
                    }
                }
                if let Some(MessageSchema::RegistryReference(reference)) = &message.schema {
                    let _ = text(reference);
                }
                message.schema = Some(MessageSchema::Inline(InlineSchema { name: "n".into(), content: "{}".into() }));
                message.content_type = Some(BufferOrString::String("application/json".to_string()));
                message.payload = BufferOrBytes::Bytes([payload, topic].concat());
                logger::log(Level::Info, "fixture/map", &format!("result: {message:?}"));
                let rebuilt = Message {
                    timestamp: message.timestamp,
                    topic: BufferOrBytes::Bytes(b"sensors"[..].to_owned()),
                    payload: message.payload,
                    properties: message.properties,
                    schema: None,
                    content_type: None,
                };
                Ok(DataModel::Message(rebuilt))
            }
            DataModel::Snapshot(snapshot) => Ok(DataModel::Snapshot(Snapshot {
                timestamp: snapshot.timestamp,
                format: BufferOrString::String(snapshot.format.to_string_lossy()),
                width: snapshot.width,
                height: snapshot.height,
                frame: BufferOrBytes::Bytes(snapshot.frame.read()),
            })),
            DataModel::BufferOrBytes(bytes) => Ok(DataModel::BufferOrBytes(bytes)),
        }
    }
}

mod filter_module {
    use std::sync::OnceLock;
    use wasm_graph_sdk::macros::filter_operator;

    static LIMIT: OnceLock<usize> = OnceLock::new();

    #[allow(clippy::needless_pass_by_value)]
    fn filter_init(configuration: ModuleConfiguration) -> bool {
        configuration
            .properties
            .iter()
            .find(|(key, _)| key == "limit")
            .map_or(true, |(_, value)| value.parse().map(|v| LIMIT.set(v).is_ok()).unwrap_or(false))
    }

    #[filter_operator(init = "filter_init")]
    // a comment between the attribute and the function
    fn filter(input: DataModel) -> Result<bool, Error> {
        let DataModel::Message(message) = input else {
            return Err(Error { message: "Unexpected input type".to_string() });
        };
        Ok(message.payload.read().len() < LIMIT.get().copied().unwrap_or(usize::MAX))
    }
}

mod branch_module {
    use wasm_graph_sdk::macros::branch_operator;

    // Named like the glue's own parameters: the glue must still call these functions.
    fn configuration(_configuration: ModuleConfiguration) -> bool {
        true
    }

    #[branch_operator(init = "configuration")]
    fn timestamp(_timestamp: HybridLogicalClock, input: DataModel) -> Result<bool, Error> {
        Ok(match input {
            DataModel::Message(message) => message.topic.read() == b"snapshot_simulation",
            DataModel::Snapshot(_frame) => true,
            DataModel::BufferOrBytes(_) => false,
        })
    }
}

mod accumulate_module {
    use wasm_graph_sdk::macros::accumulate_operator;

    #[accumulate_operator]
    #[allow(clippy::cast_precision_loss)]
    fn collect(staged: DataModel, inputs: Vec<DataModel>) -> Result<DataModel, Error> {
        let DataModel::Message(mut result) = staged else {
            return Err(Error { message: "Unexpected input type".into() });
        };
        let mut latest = Timespec { secs: 0, nanos: 0 };
        let mut all = match &result.payload {
            BufferOrBytes::Buffer(buffer) => buffer.read(),
            BufferOrBytes::Bytes(bytes) => bytes.clone(),
        };
        for input in inputs {
            let (ts, payload) = match input {
                DataModel::Message(message) => (message.timestamp.timestamp, message.payload.read()),
                DataModel::Snapshot(frame) => (frame.timestamp.timestamp, frame.frame.read()),
                DataModel::BufferOrBytes(_) => return Err(Error { message: "bare payload".into() }),
            };
            if ts.secs >= latest.secs || (ts.secs == latest.secs && ts.nanos >= latest.nanos) {
                latest = ts;
            }
            all.extend(payload);
        }
        result.timestamp.timestamp.secs = latest.secs;
        result.timestamp.timestamp.nanos = latest.nanos;
        result.payload = BufferOrBytes::Bytes(all);
        Ok(DataModel::Message(result))
    }
}

// A delay at the crate root, named `delay`, with `Duration` (std's) unqualified.
use wasm_graph_sdk::macros::delay_operator;

const WINDOW_MS: u128 = 10_000;

fn delay_init(configuration: ModuleConfiguration) -> bool {
    configuration.properties.is_empty() || configuration.module_schemas.is_empty()
}

#[delay_operator(init = "delay_init")]
fn delay(input: DataModel, timestamp: HybridLogicalClock) -> Result<HybridLogicalClock, Error> {
    let mut time = match input {
        DataModel::Message(message) => message.timestamp.timestamp,
        DataModel::Snapshot(frame) => frame.timestamp.timestamp,
        DataModel::BufferOrBytes(_) => timestamp.timestamp,
    };
    let time_duration = Duration::from(time);
    let time_ms = time_duration.as_millis();
    if time_ms % WINDOW_MS != 0 {
        let remainder = WINDOW_MS - (time_ms % WINDOW_MS);
        time = (time_duration + Duration::from_millis(u64::try_from(remainder).unwrap())).into();
        time.nanos -= time.nanos % 1_000_000;
    }
    let mut timestamp = timestamp;
    timestamp.timestamp = time;
    timestamp.counter = 0;
    Ok(timestamp)
}

// The types without a macro, by the prelude or the crate root.
pub mod helpers {
    use wasm_graph_sdk::prelude::*;

    pub fn clock_of(ts: Timestamp) -> HybridLogicalClock {
        ts.into()
    }

    pub fn error(message: impl ToString) -> wasm_graph_sdk::Error {
        wasm_graph_sdk::Error { message: message.to_string() }
    }

    pub fn bytes(item: &wasm_graph_sdk::DataModel) -> Option<Vec<u8>> {
        match item {
            DataModel::Message(m) => Some(m.payload.read()),
            _ => None,
        }
    }
}
"#;

#[test]
fn an_operator_using_the_whole_api_compiles() {
    let (ok, stderr) = check("sdk_fixture_whole_api", WHOLE_API);
    assert!(ok, "the fixture does not compile:\n{stderr}");
    assert!(
        !stderr.contains("warning"),
        "the fixture compiles with warnings:\n{stderr}"
    );
}

/// Functions of wrong signatures, one per kind (and a wrong `init`).
const WRONG_SIGNATURES: &str = r#"
mod m {
    use wasm_graph_sdk::macros::map_operator;
    #[map_operator]
    fn wrong_parameter(input: String) -> Result<DataModel, Error> { Err(Error { message: input }) }
}
mod f {
    use wasm_graph_sdk::macros::filter_operator;
    #[filter_operator]
    fn bare_result(_input: DataModel) -> bool { true }
}
mod b {
    use wasm_graph_sdk::macros::branch_operator;
    #[branch_operator]
    fn no_timestamp(_input: DataModel) -> Result<bool, Error> { Ok(true) }
}
mod a {
    use wasm_graph_sdk::macros::accumulate_operator;
    #[accumulate_operator]
    fn slice(staged: DataModel, _batch: &[DataModel]) -> Result<DataModel, Error> { Ok(staged) }
}
mod d {
    use wasm_graph_sdk::macros::delay_operator;
    #[delay_operator(init = "setup")]
    fn swapped(t: HybridLogicalClock, _input: DataModel) -> Result<HybridLogicalClock, Error> { Ok(t) }
    fn setup(_configuration: &ModuleConfiguration) -> bool { true }
}
"#;

#[test]
fn a_wrong_signature_names_the_operator_kind_and_the_expected_signature() {
    let (ok, stderr) = check("sdk_fixture_wrong_signatures", WRONG_SIGNATURES);
    assert!(!ok, "wrong signatures compiled:\n{stderr}");
    for expected in [
        ":5:8: error[E0277]: #[map_operator] must be used on a function `fn(DataModel) -> Result<DataModel, Error>`, not `fn(std::string::String) -> ",
        ":10:8: error[E0277]: #[filter_operator] must be used on a function `fn(DataModel) -> Result<bool, Error>`, not `fn(",
        ":15:21: error: #[branch_operator] must be used on a function `fn(HybridLogicalClock, DataModel) -> Result<bool, Error>` (the branch operator's `process`); it takes 1 parameter where `process` takes 2 parameters",
        ":20:8: error[E0277]: #[accumulate_operator] must be used on a function `fn(DataModel, Vec<DataModel>) -> Result<DataModel, Error>`, not `fn(",
        ":25:8: error[E0277]: #[delay_operator] must be used on a function `fn(DataModel, HybridLogicalClock) -> Result<HybridLogicalClock, Error>`, not `fn(",
        ":24:29: error[E0277]: `init` of #[delay_operator] must name a function `fn(ModuleConfiguration) -> bool`, not `fn(&",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    // Nothing else fails: the glue type-checks whatever the marked function's signature.
    let errors = stderr.lines().filter(|l| l.contains(": error")).count();
    assert_eq!(errors, 6, "{stderr}");
}
