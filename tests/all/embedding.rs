//! A graph composed with its router (`--router composed`) runs on a host that is not wasmflow:
//! a minimal wasmtime embedding, written here, that provides only the host interfaces the
//! graph imports (WASI with nothing granted, `types` with its `buffer`, a logger and metrics
//! that discard what they get) and drives graph-simple through its `wasmflow:graph/graph`
//! export. Nothing of wasmflow's runtime is used: wasmflow only composed the component.

use wasmflow_compose::{ComposeOptions, Routing};
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::support::{module, repo};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package wasmflow:embedding-test;\nworld embedding { export wasmflow:graph/graph@0.1.0; }\n",
        path: "../../wit/wasmflow",
    });
}

use bindings::exports::wasmflow::graph::graph::{Event, Item};
use bindings::wasm_graph::processor::hybrid_logical_clock::{HybridLogicalClock, Timespec};
use bindings::wasm_graph::processor::types::{
    BufferOrBytes, BufferOrString, DataModel, Message, MessageProperties, ModuleConfiguration, Timestamp,
};

/// The embedding's whole host state.
struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Payload bytes held by the host; this embedding hands out none, but the type must exist.
struct Bytes(Vec<u8>);

impl bindings::wasm_graph::processor::types::HostBuffer for Host {
    fn read(&mut self, buffer: Resource<bindings::wasm_graph::processor::types::Buffer>) -> Vec<u8> {
        let rep = Resource::<Bytes>::new_borrow(buffer.rep());
        self.table.get(&rep).map(|b| b.0.clone()).unwrap_or_default()
    }

    fn drop(&mut self, buffer: Resource<bindings::wasm_graph::processor::types::Buffer>) -> wasmtime::Result<()> {
        let _ = self.table.delete(Resource::<Bytes>::new_own(buffer.rep()));
        Ok(())
    }
}

impl bindings::wasm_graph::processor::types::Host for Host {}
impl bindings::wasm_graph::processor::hybrid_logical_clock::Host for Host {}

fn reading(fahrenheit: f64, secs: u64) -> Item {
    let ts = HybridLogicalClock {
        timestamp: Timespec { secs, nanos: 0 },
        counter: 0,
        node_id: "embedding".into(),
    };
    Item {
        value: DataModel::Message(Message {
            timestamp: Timestamp {
                timestamp: ts.timestamp,
                counter: 0,
                node_id: BufferOrString::String("embedding".into()),
            },
            topic: BufferOrBytes::Bytes(b"sensors/1".to_vec()),
            content_type: Some(BufferOrString::String("application/json".into())),
            payload: BufferOrBytes::Bytes(
                format!(r#"{{"temperature":{{"value":{fahrenheit},"unit":"F"}}}}"#).into_bytes(),
            ),
            properties: MessageProperties {
                user_properties: vec![(
                    BufferOrString::String("sensor".into()),
                    BufferOrString::String("s1".into()),
                )],
            },
            schema: None,
        }),
        ts,
    }
}

#[test]
fn graph_simple_runs_through_its_graph_export_on_a_plain_wasmtime_host() {
    module("wasmflow-router");
    let graph = repo().join("compose/tests/azure-compat/graph-simple.yaml");
    let composed = wasmflow_compose::compose(
        &wasmflow_compose::load_graph(&graph).expect("graph-simple"),
        &ComposeOptions {
            default_modules_dir: Some(wasmflow_runtime::default_modules_dir()),
            routing: Routing::Composed,
            ..Default::default()
        },
    )
    .expect("compose with the router");

    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_implements(true);
    let engine = Engine::new(&config).expect("engine");
    let component = Component::new(&engine, &composed.bytes).expect("compile");

    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    bindings::wasm_graph::processor::types::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |h| h).expect("types");
    bindings::wasm_graph::processor::hybrid_logical_clock::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |h| h)
        .expect("clock");
    // Each operator's own logger and metrics (`op<N>-logger`, `op<N>-metrics`): discard.
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    for name in &imports {
        if name.ends_with("-logger") {
            linker
                .instance(name)
                .unwrap()
                .func_new("log", |_, _, _, _| Ok(()))
                .unwrap();
        } else if name.ends_with("-metrics") {
            let mut instance = linker.instance(name).unwrap();
            for f in ["add-to-counter", "record-to-histogram"] {
                instance
                    .func_new(f, |_, _, _, results: &mut [Val]| {
                        results[0] = Val::Result(Ok(None));
                        Ok(())
                    })
                    .unwrap();
            }
        }
    }
    // Nothing else: graph-simple imports no state store or schema registry. (Stubbing unknown
    // imports as traps would redefine `wasi:io/error@0.2.12`, which the linker serves through
    // semver matching, and break the `streams` types that use it.)

    let mut store = Store::new(
        &engine,
        Host {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    let embedding = bindings::Embedding::instantiate(&mut store, &component, &linker).expect("instantiate");
    let g = embedding.wasmflow_graph_graph();

    let no_config = || ModuleConfiguration {
        properties: vec![],
        module_schemas: vec![],
    };
    // source, module-temperature/map, sink.
    g.call_init(&mut store, &[no_config(), no_config(), no_config()])
        .expect("init call")
        .expect("every operator accepts its configuration");

    let events = g
        .call_push(&mut store, 0, &reading(212.0, 1_767_225_600), false)
        .expect("push");
    assert_eq!(events.len(), 1, "one output");
    let Event::Output((sink, item)) = &events[0] else {
        panic!("an output, got another event")
    };
    assert_eq!(*sink, 2, "the sink is operation 2");
    let DataModel::Message(m) = &item.value else {
        panic!("a message")
    };
    let BufferOrBytes::Bytes(payload) = &m.payload else {
        panic!("payload bytes")
    };
    let json: serde_json::Value = serde_json::from_slice(payload).expect("JSON payload");
    // 212 °F is 100 °C: the same conversion the sample's own tests check.
    assert_eq!(json["temperature"]["value"], serde_json::json!(100.0), "{json}");
    assert_eq!(json["temperature"]["unit"], "C", "{json}");
    assert_eq!(item.ts.timestamp.secs, 1_767_225_600, "event time kept");
    assert_eq!(
        m.properties.user_properties.len(),
        1,
        "user properties pass through the map"
    );

    // Counts: the map received one item and passed it on.
    let counts = g.call_take_counts(&mut store).expect("counts");
    assert_eq!(counts.len(), 3);
    assert_eq!((counts[1].received, counts[1].emitted), (1, 1));
}
