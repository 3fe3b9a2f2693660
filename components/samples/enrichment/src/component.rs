//! Component glue: the exports of world `wasmflow:samples/enrichment`, and [`StateStore`] over
//! the imported `state-store` interface.

use std::hash::BuildHasher;
use std::sync::Mutex;

use wasmflow_guest::glue::logger::Level;
use wasmflow_guest::glue::state_store;
use wasmflow_guest::glue::state_store_types::{Duration, SetConditions, SetOptions};
use wasmflow_guest::glue::types::{BufferOrBytes, BufferOrString, DataModel, Error, ModuleConfiguration};
use wasmflow_guest::glue::{bytes_of, error, finish_init, hlc_from_binding, hlc_to_binding, log};
use wasmflow_guest::hlc::Hlc;

use crate::{SetCondition, SetResponse, StateStore, OUTPUT_TOPIC};

wasmflow_guest::component_bindings!(operator, "enrichment", "../../../wit/samples");

struct Component;
export!(Component);

const CONTEXT: &str = "enrichment/map";

/// This instance's lock-holder id, made once per instance (two instances of the module, in one
/// graph or in two processes, must not take each other's lock for their own).
static OWNER: Mutex<Option<String>> = Mutex::new(None);

fn owner() -> String {
    let mut owner = OWNER.lock().unwrap_or_else(|e| e.into_inner());
    owner
        .get_or_insert_with(|| {
            // RandomState is seeded from the host's randomness (wasi:random).
            let seed = std::collections::hash_map::RandomState::new().hash_one(0u8);
            format!("enrichment-{seed:016x}")
        })
        .clone()
}

/// The imported state store.
struct HostStore;

fn duration(millis: u64) -> Duration {
    Duration {
        seconds: millis / 1000,
        nanos: (millis % 1000) as u32 * 1_000_000,
    }
}

impl StateStore for HostStore {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        state_store::get(key.as_bytes(), None)
            .map(|r| r.response)
            .map_err(|e| format!("{e:?}"))
    }

    fn set(
        &mut self,
        key: &str,
        value: &[u8],
        fencing_token: Option<&Hlc>,
        condition: SetCondition,
        expires_millis: Option<u64>,
    ) -> Result<SetResponse, String> {
        let options = SetOptions {
            conditions: match condition {
                SetCondition::OnlyIfDoesNotExist => SetConditions::OnlyIfDoesNotExist,
                SetCondition::OnlyIfEqualOrDoesNotExist => SetConditions::OnlyIfEqualOrDoesNotExist,
                SetCondition::Unconditional => SetConditions::Unconditional,
            },
            expires: expires_millis.map(duration),
        };
        let token = fencing_token.map(hlc_to_binding);
        state_store::set(key.as_bytes(), value, None, token.as_ref(), options)
            .map(|r| SetResponse {
                applied: r.response,
                version: r.version.as_ref().map(hlc_from_binding),
            })
            .map_err(|e| format!("{e:?}"))
    }

    fn vdel(&mut self, key: &str, value: &[u8], fencing_token: Option<&Hlc>) -> Result<i64, String> {
        let token = fencing_token.map(hlc_to_binding);
        state_store::vdel(key.as_bytes(), value, token.as_ref(), None)
            .map(|r| r.response)
            .map_err(|e| format!("{e:?}"))
    }
}

impl exports::wasm_graph::processor::map::Guest for Component {
    fn init(configuration: ModuleConfiguration) -> bool {
        finish_init(CONTEXT, &configuration, Ok(format!("lock holder id {}", owner())))
    }

    fn process(message: DataModel) -> Result<DataModel, Error> {
        let DataModel::Message(mut message) = message else {
            return Err(error(format!("{CONTEXT}: expects a message carrying sensor_data")));
        };
        let enriched = crate::enrich(&bytes_of(&message.payload), &mut HostStore, &owner())
            .map_err(|e| error(format!("{CONTEXT}: {e}")))?;
        for warning in &enriched.warnings {
            log(Level::Warn, CONTEXT, warning);
        }
        if let Some(c) = &enriched.counted {
            let token = c
                .token
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), ToString::to_string);
            log(
                Level::Info,
                CONTEXT,
                &format!("counted over-temperature window {} under lock token {token}", c.count),
            );
        }
        message.topic = BufferOrBytes::Bytes(OUTPUT_TOPIC.as_bytes().to_vec());
        message.payload = BufferOrBytes::Bytes(enriched.payload);
        message.content_type = Some(BufferOrString::String(sample_common::glue::JSON.to_owned()));
        Ok(DataModel::Message(message))
    }
}
