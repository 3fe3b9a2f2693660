//! Component glue on the SDK: the map and accumulate operators, and the faults themselves.

use std::sync::Mutex;

use sample_common::glue::{
    bytes_of, config_value, copy_timestamp, describe_configuration, error, finish_init, timestamp_of,
};
use wasm_graph_sdk::logger::{self, Level};
use wasm_graph_sdk::macros::{accumulate_operator, map_operator};

use crate::{
    batch_fault, count_payload, fault_of, Fault, InitMode, PayloadMode, ERR_MESSAGE, INIT_KEY, INIT_PANIC_MESSAGE,
    PANIC_MESSAGE, PAYLOAD_KEY,
};

/// Whether the map reads payloads (per instance, so per operation).
static PAYLOAD: Mutex<PayloadMode> = Mutex::new(PayloadMode::Read);

/// Size of one allocation of the `oom` fault.
const OOM_CHUNK: usize = 16 << 20;

/// The `init` of both exports: one log record, then what the `init` property asks for.
fn init_as(context: &str, configuration: &ModuleConfiguration) -> bool {
    match InitMode::from_config(config_value(configuration, INIT_KEY)) {
        Ok(InitMode::Ok) => finish_init(context, configuration, Ok("behaving".to_owned())),
        Ok(InitMode::False) => finish_init(
            context,
            configuration,
            Err(format!("asked to fail init (`{INIT_KEY}` = \"false\")")),
        ),
        Ok(InitMode::Trap) => {
            logger::log(
                Level::Warn,
                context,
                &format!(
                    "init with {}; trapping as asked (`{INIT_KEY}` = \"trap\")",
                    describe_configuration(configuration)
                ),
            );
            panic!("{INIT_PANIC_MESSAGE}")
        }
        Err(reason) => finish_init(context, configuration, Err(reason)),
    }
}

/// Does `fault`. Returns only for [`Fault::Err`], with the error `process` must return; every
/// other fault ends the call in a trap or never ends it.
fn perform(fault: Fault) -> Error {
    match fault {
        Fault::Err => error(ERR_MESSAGE),
        Fault::Panic => panic!("{PANIC_MESSAGE}"),
        Fault::Unreachable => core::arch::wasm32::unreachable(),
        Fault::Loop => spin_forever(),
        Fault::Oom => exhaust_memory(),
    }
}

/// Never returns. `black_box` makes every turn an opaque computation, so the optimizer cannot
/// prove the loop useless and fold it away; the host's deadline (epoch interruption or fuel)
/// is the only way out.
fn spin_forever() -> ! {
    let mut turns: u64 = 0;
    loop {
        turns = core::hint::black_box(turns.wrapping_add(1));
    }
}

/// Allocates 16 MiB chunks, writing every byte and keeping them all alive, until an allocation
/// fails; the allocation failure aborts, which is a trap. A non-zero fill is used because a
/// zeroed allocation may be served by fresh `memory.grow` pages without touching them, and
/// `black_box` keeps the optimizer from dropping the unused chunks. The host is expected to cap
/// the instance's memory: without a cap this grows to the 4 GiB a wasm32 memory can address.
fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = core::hint::black_box(vec![0xA5u8; OOM_CHUNK]);
        hoard.push(chunk);
        core::hint::black_box(&hoard);
    }
}

/// The JSON-carrying bytes of an item, `None` for a snapshot (its frame is image data and is
/// not read).
fn payload_of(item: &DataModel) -> Option<&BufferOrBytes> {
    match item {
        DataModel::Message(message) => Some(&message.payload),
        DataModel::BufferOrBytes(payload) => Some(payload),
        DataModel::Snapshot(_) => None,
    }
}

fn map_init(configuration: ModuleConfiguration) -> bool {
    match PayloadMode::from_config(config_value(&configuration, PAYLOAD_KEY)) {
        Ok(mode) => *PAYLOAD.lock().unwrap_or_else(|e| e.into_inner()) = mode,
        Err(reason) => return finish_init("faulty/map", &configuration, Err(reason)),
    }
    init_as("faulty/map", &configuration)
}

/// Reads the payload to look for a fault; without one the item is returned as it came (a host
/// buffer is handed back as the same buffer, so the bytes are the same). With
/// `payload = ignore` the payload is not read at all.
#[map_operator(init = "map_init")]
fn map_fault(message: DataModel) -> Result<DataModel, Error> {
    if *PAYLOAD.lock().unwrap_or_else(|e| e.into_inner()) == PayloadMode::Ignore {
        return Ok(message);
    }
    match payload_of(&message).and_then(|payload| fault_of(&bytes_of(payload))) {
        Some(fault) => Err(perform(fault)),
        None => Ok(message),
    }
}

fn accumulate_init(configuration: ModuleConfiguration) -> bool {
    init_as("faulty/accumulate", &configuration)
}

/// The first item (in batch order) that asks for a fault decides the fault; otherwise the
/// output is `{"count":N}` for the N items, with the timestamp of the last item that has one
/// (else the staged message's) and the topic of the last message (else the staged one's).
#[accumulate_operator(init = "accumulate_init")]
fn accumulate_fault(staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
    if let Some(fault) = batch_fault(message.iter().map(|item| payload_of(item).map(bytes_of))) {
        return Err(perform(fault));
    }
    let count = message.len();
    let timestamp = message
        .iter()
        .rev()
        .find_map(timestamp_of)
        .or_else(|| timestamp_of(&staged))
        .map(copy_timestamp)
        .unwrap_or_else(|| Timestamp {
            timestamp: Timespec { secs: 0, nanos: 0 },
            counter: 0,
            node_id: BufferOrString::String(String::new()),
        });
    let staged_topic = match staged {
        DataModel::Message(staged) => Some(staged.topic),
        _ => None,
    };
    let topic = message
        .into_iter()
        .rev()
        .find_map(|item| match item {
            DataModel::Message(message) => Some(message.topic),
            _ => None,
        })
        .or(staged_topic)
        .unwrap_or_else(|| BufferOrBytes::Bytes(Vec::new()));
    Ok(DataModel::Message(Message {
        timestamp,
        topic,
        content_type: Some(BufferOrString::String("application/json".to_owned())),
        payload: BufferOrBytes::Bytes(count_payload(count)),
        properties: MessageProperties {
            user_properties: Vec::new(),
        },
        schema: None,
    }))
}
