//! # wasm_graph_sdk
//!
//! A Rust SDK for data-flow operators that implement the WIT package
//! **`wasm-graph:processor@1.1.0`** (this repository's `wit/processor/`, the interface of Azure
//! IoT Operations' WASM data-flow graphs). It is source-compatible with the platform's own SDK
//! (`wasm_graph_sdk` 1.1.3): the platform's published operators build against it unmodified,
//! for `wasm32-wasip2`, once `wasm_graph_sdk` is pointed at this crate (see the crate's
//! `README.md` and `scripts/build-platform-operators.sh`).
//!
//! ## Writing an operator
//!
//! An operator is a `cdylib` crate with one function marked by a [`macros`] attribute per
//! operator kind it implements:
//!
//! ```ignore
//! use wasm_graph_sdk::logger::{self, Level};
//! use wasm_graph_sdk::macros::map_operator;
//!
//! fn my_init(configuration: ModuleConfiguration) -> bool {
//!     logger::log(Level::Info, "my-module/map", &format!("{} properties", configuration.properties.len()));
//!     true
//! }
//!
//! #[map_operator(init = "my_init")]
//! fn shout(input: DataModel) -> Result<DataModel, Error> {
//!     let DataModel::Message(mut message) = input else {
//!         return Err(Error { message: "expected a message".to_string() });
//!     };
//!     message.payload = BufferOrBytes::Bytes(message.payload.read().to_ascii_uppercase());
//!     Ok(DataModel::Message(message))
//! }
//! ```
//!
//! The macro brings the data-model types ([`prelude`]) into the function's module, so the
//! operator names `DataModel`, `Message`, `ModuleConfiguration`, `Error`, … without importing
//! them, and it expands the export glue of the kind's world (`map-impl`, `filter-impl`,
//! `branch-impl`, `accumulate-impl`, `delay-impl`). A function of the wrong signature is a compile
//! error that names the operator kind and the expected signature.
//!
//! ## Host services
//!
//! * [`logger`]: log records (`logger::log(Level::Info, context, message)`);
//! * [`metrics`]: counters and histograms (`metrics::add_to_counter`);
//! * [`state_store`]: the graph's shared key-value store, with locks and fencing tokens.
//!
//! ## Types
//!
//! The types are the WIT's, generated with `wit-bindgen` 0.46 once, in this crate, and shared by
//! every operator of a crate: [`types`] (the data model), [`hybrid_logical_clock`] (event time).
//! They are also re-exported at the crate root. The SDK adds conveniences the platform's SDK
//! has: [`BufferOrBytes::read`], `Duration` ⇄ [`Timespec`], [`Timestamp`] →
//! [`HybridLogicalClock`], [`BufferOrString`] → `String`, `SetOptions::default()`.

#![warn(missing_docs)]

mod convert;

// Stand-ins for the pthread functions an old WASI libc lacks (see the module); only when the
// build asks for them.
#[cfg(all(wasm_graph_sdk_pthread_stubs, target_os = "wasi", not(target_feature = "atomics")))]
mod wasi_pthread;

/// The generated bindings of the imported interfaces (types, clock, logger, metrics, state
/// store). Operator crates refer to them through `__private::wit` (the macros map their world's
/// imports onto these with wit-bindgen's `with`), so every operator of a crate shares one set of
/// types.
#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        inline: r#"
            package wasm-graph-sdk:bindings@1.1.3;

            world sdk {
                import wasm-graph:processor/types@1.1.0;
                import wasm-graph:processor/hybrid-logical-clock@1.1.0;
                import wasm-graph:processor/state-store-types@1.1.0;
                import wasm-graph:processor/state-store@1.1.0;
                import wasm-graph:processor/logger@1.1.0;
                import wasm-graph:processor/metrics@1.1.0;
            }
        "#,
        path: "../../wit/processor",
        generate_all,
        // Equality for every type that holds no host buffer (a resource handle has none).
        additional_derives: [PartialEq],
        additional_derives_ignore: [
            "buffer-or-bytes", "buffer-or-string", "timestamp", "message-properties",
            "inline-schema", "message-schema", "message", "snapshot", "data-model",
        ],
    });
}

use bindings::wasm_graph::processor as wit;

pub mod hybrid_logical_clock {
    //! Event time: a hybrid logical clock (wall time, a counter, the node that stamped it).
    //!
    //! `Timespec` converts to and from [`std::time::Duration`] (time since the Unix epoch):
    //! `Duration::from(timespec)`, `Timespec::from(duration)`.

    /// Whole seconds since the Unix epoch.
    pub use crate::wit::hybrid_logical_clock::Seconds;

    /// Nanoseconds within the second.
    pub use crate::wit::hybrid_logical_clock::Nanoseconds;

    /// A point in time: seconds since the Unix epoch and nanoseconds (`secs`, `nanos`).
    pub use crate::wit::hybrid_logical_clock::Timespec;

    /// A hybrid logical clock: `timestamp` (wall time), `counter` (orders events of the same
    /// wall time), `node_id` (the node that stamped it). Branch and delay operators receive the
    /// item's clock; a delay operator returns the new one.
    pub use crate::wit::hybrid_logical_clock::HybridLogicalClock;
}

pub mod types {
    //! The data model that flows between operators (WIT interface `types`).
    //!
    //! Payloads arrive as host [`Buffer`]s (read on demand); an operator usually answers with
    //! owned bytes ([`BufferOrBytes::Bytes`], [`BufferOrString::String`]).

    /// Bytes held by the host. `read()` copies them into the module.
    pub use crate::wit::types::Buffer;

    /// A host buffer or owned bytes; `read()` gives the bytes either way.
    pub use crate::wit::types::BufferOrBytes;

    /// A host buffer or an owned string (the case `String`).
    pub use crate::wit::types::BufferOrString;

    /// A message's timestamp: wall time (`timestamp`), `counter` and `node_id`.
    pub use crate::wit::types::Timestamp;

    /// A message's MQTT user properties (`user_properties`: key/value pairs).
    pub use crate::wit::types::MessageProperties;

    /// A schema given inline: `name` and `content`.
    pub use crate::wit::types::InlineSchema;

    /// The schema of a message: a schema-registry reference or an inline schema.
    pub use crate::wit::types::MessageSchema;

    /// A message: `timestamp`, `topic`, `content_type`, `payload`, `properties`, `schema`.
    pub use crate::wit::types::Message;

    /// A video frame: `timestamp`, `format`, `width`, `height`, `frame`.
    pub use crate::wit::types::Snapshot;

    /// What an operator receives and returns: a bare payload (`BufferOrBytes`), a `Message` or
    /// a `Snapshot`.
    pub use crate::wit::types::DataModel;

    /// A schema the graph hands to a module at `init` (`name`, `content_type`, `content`).
    pub use crate::wit::types::ModuleSchema;

    /// What `init` receives: the operation's configuration `properties` (key/value pairs) and
    /// its `module_schemas`.
    pub use crate::wit::types::ModuleConfiguration;

    /// The error an operator returns from `process` (`message`).
    pub use crate::wit::types::Error;

    /// Event time (from [`crate::hybrid_logical_clock`]).
    pub use crate::hybrid_logical_clock::{HybridLogicalClock, Timespec};
}

pub use hybrid_logical_clock::{HybridLogicalClock, Timespec};
pub use types::{
    Buffer, BufferOrBytes, BufferOrString, DataModel, Error, InlineSchema, Message, MessageProperties, MessageSchema,
    ModuleConfiguration, ModuleSchema, Snapshot, Timestamp,
};

pub mod prelude {
    //! What every operator macro brings into the module of the function it marks (a glob import,
    //! so the module's own items and explicit imports take precedence): the data-model types,
    //! the clock types and [`std::time::Duration`].
    //!
    //! Code outside such a module can `use wasm_graph_sdk::prelude::*;` for the same names.

    pub use crate::hybrid_logical_clock::{HybridLogicalClock, Timespec};
    pub use crate::types::{
        Buffer, BufferOrBytes, BufferOrString, DataModel, Error, InlineSchema, Message, MessageProperties,
        MessageSchema, ModuleConfiguration, ModuleSchema, Snapshot, Timestamp,
    };
    pub use std::time::Duration;
}

pub mod macros {
    //! The operator attribute macros, one per operator kind. Each marks the function that
    //! implements the kind's `process`; `init = "fn_name"` names an optional
    //! `fn(ModuleConfiguration) -> bool` called once when the module is loaded.
    //!
    //! | macro | the marked function |
    //! |---|---|
    //! | [`map_operator`] | `fn(DataModel) -> Result<DataModel, Error>` |
    //! | [`filter_operator`] | `fn(DataModel) -> Result<bool, Error>` (`true` passes) |
    //! | [`branch_operator`] | `fn(HybridLogicalClock, DataModel) -> Result<bool, Error>` (`false` → first arm) |
    //! | [`accumulate_operator`] | `fn(DataModel, Vec<DataModel>) -> Result<DataModel, Error>` (staged, batch) |
    //! | [`delay_operator`] | `fn(DataModel, HybridLogicalClock) -> Result<HybridLogicalClock, Error>` |
    //!
    //! A crate may implement several kinds (one component exporting several interfaces), at
    //! most one function per kind.

    pub use wasm_graph_sdk_wit::{accumulate_operator, branch_operator, delay_operator, filter_operator, map_operator};
}

pub mod logger {
    //! Log records to the host (WIT interface `logger`); the host adds the graph and the
    //! operation.

    /// The severity of a record: `Trace`, `Debug`, `Info`, `Warn`, `Error`, `Critical`.
    pub use crate::wit::logger::Level;

    /// Logs `message` at `level`; `context` says where it comes from (by convention the
    /// operation, e.g. `"module-temperature/map"`).
    pub fn log(level: Level, context: &str, message: &str) {
        crate::wit::logger::log(level, context, message);
    }
}

pub mod metrics {
    //! Counters and histograms (WIT interface `metrics`); the host adds the operation as a
    //! label.

    /// A counter increment (`CounterValue::U64`).
    pub use crate::wit::metrics::CounterValue;

    /// A histogram sample (`HistogramValue::F64` or `HistogramValue::U64`).
    pub use crate::wit::metrics::HistogramValue;

    /// A metric label: `key` and `value`.
    pub use crate::wit::metrics::Label;

    /// Why the host refused a sample: `IncompatibleType` (the name was used with another kind
    /// or value type) or `LockError`.
    pub use crate::wit::metrics::MetricsError;

    /// Adds `value` to the counter `name` (with optional `labels`).
    ///
    /// ```ignore
    /// let labels = vec![Label { key: "module".to_owned(), value: "my-module/map".to_owned() }];
    /// let _ = metrics::add_to_counter("requests", CounterValue::U64(1), Some(&labels));
    /// ```
    pub fn add_to_counter(name: &str, value: CounterValue, labels: Option<&[Label]>) -> Result<(), MetricsError> {
        crate::wit::metrics::add_to_counter(name, value, labels)
    }

    /// Records `value` in the histogram `name` (with optional `labels`).
    pub fn record_to_histogram(
        name: &str,
        value: HistogramValue,
        labels: Option<&[Label]>,
    ) -> Result<(), MetricsError> {
        crate::wit::metrics::record_to_histogram(name, value, labels)
    }
}

pub mod state_store {
    //! The graph's shared key-value store (WIT interfaces `state-store`, `state-store-types`).
    //!
    //! Keys and values are bytes. Every write answers a `version`, a [`HybridLogicalClock`] that
    //! serves as a fencing token: a later `set`/`del`/`vdel` that carries an older token than the
    //! key's current one is refused. `set` with [`SetConditions::OnlyIfEqualOrDoesNotExist`] is
    //! the lock primitive (the holder renews its lock by setting the same value again), and
    //! [`vdel`] releases it only if the value still matches:
    //!
    //! ```ignore
    //! let lock = state_store::set(b"lock", b"me", None, None, SetOptions {
    //!     conditions: SetConditions::OnlyIfEqualOrDoesNotExist,
    //!     expires: Some(state_store::Duration { seconds: 10, nanos: 0 }),
    //! })?;
    //! if lock.response {
    //!     let token = lock.version.unwrap();
    //!     state_store::set(b"count", b"1", None, Some(&token), SetOptions::default())?;
    //!     state_store::vdel(b"lock", b"me", None, None)?;
    //! }
    //! ```

    /// The event-time clock, used here as the version/fencing token of a key.
    pub use crate::hybrid_logical_clock::{HybridLogicalClock, Timespec};

    /// A time span for timeouts and expiries: `seconds` and `nanos` (converts from and to
    /// [`std::time::Duration`]).
    pub use crate::wit::state_store_types::Duration;

    /// When a `set` applies: `OnlyIfDoesNotExist`, `OnlyIfEqualOrDoesNotExist` (the lock
    /// primitive) or `Unconditional`.
    pub use crate::wit::state_store_types::SetConditions;

    /// The options of a `set`: `conditions` and an optional `expires` (the key vanishes after
    /// that span). `SetOptions::default()` is an unconditional set that never expires.
    pub use crate::wit::state_store_types::SetOptions;

    /// Why a request failed: `RequestError(reason)`, `Timeout`, `Protocol`, `Internal`.
    pub use crate::wit::state_store_types::StateStoreError;

    /// The answer to `get`: `response` (the value, if the key exists) and its `version`.
    pub use crate::wit::state_store_types::StateStoreGetResponse;

    /// The answer to `set`: `response` (whether the value was written) and the new `version`.
    pub use crate::wit::state_store_types::StateStoreSetResponse;

    /// The answer to `del`/`vdel`: `response` (keys deleted: 0 or 1; `vdel` answers -1 when the
    /// value did not match) and `version`.
    pub use crate::wit::state_store_types::StateStoreDelResponse;

    /// Reads `key`.
    pub fn get(key: &[u8], timeout: Option<Duration>) -> Result<StateStoreGetResponse, StateStoreError> {
        crate::wit::state_store::get(key, timeout)
    }

    /// Writes `value` under `key`, if `options.conditions` allow and `fencing_token` (when
    /// given) is not older than the key's current version.
    pub fn set(
        key: &[u8],
        value: &[u8],
        timeout: Option<Duration>,
        fencing_token: Option<&HybridLogicalClock>,
        options: SetOptions,
    ) -> Result<StateStoreSetResponse, StateStoreError> {
        crate::wit::state_store::set(key, value, timeout, fencing_token, options)
    }

    /// Deletes `key` (if `fencing_token`, when given, is not older than its version).
    pub fn del(
        key: &[u8],
        fencing_token: Option<&HybridLogicalClock>,
        timeout: Option<Duration>,
    ) -> Result<StateStoreDelResponse, StateStoreError> {
        crate::wit::state_store::del(key, fencing_token, timeout)
    }

    /// Deletes `key` only if its value is `value` (releases a lock only its holder still owns).
    pub fn vdel(
        key: &[u8],
        value: &[u8],
        fencing_token: Option<&HybridLogicalClock>,
        timeout: Option<Duration>,
    ) -> Result<StateStoreDelResponse, StateStoreError> {
        crate::wit::state_store::vdel(key, value, fencing_token, timeout)
    }
}

/// What the operator macros expand to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// The generated modules the operator worlds' imports are mapped onto.
    pub use crate::bindings::wasm_graph::processor as wit;

    use crate::{DataModel, Error, HybridLogicalClock, ModuleConfiguration};

    /// A one-parameter function as the function pointer of its own signature (the macros
    /// coerce the marked function here first, so its types come from it alone and a mismatch
    /// is reported by the kind's trait below, not as a failed cast).
    pub fn fn_pointer1<A, R>(f: fn(A) -> R) -> fn(A) -> R {
        f
    }

    /// [`fn_pointer1`] for two parameters.
    pub fn fn_pointer2<A, B, R>(f: fn(A, B) -> R) -> fn(A, B) -> R {
        f
    }

    // One trait per operator kind for `process` and one for `init`, implemented only for the
    // exact function-pointer type. The macros call the marked functions through them, so a
    // function of another signature fails with the message below, which names the kind and the
    // signature it needs (and nothing else fails: the glue itself type-checks).

    #[diagnostic::on_unimplemented(
        message = "#[map_operator] must be used on a function `fn(DataModel) -> Result<DataModel, Error>`, not `{Self}`",
        label = "the map operator's `process` takes one `DataModel` and returns `Result<DataModel, Error>`",
        note = "WIT: `process: func(message: data-model) -> result<data-model, error>` (interface `map` of wasm-graph:processor@1.1.0)"
    )]
    /// Implemented only for the exact signature of the map operator's `process`.
    pub trait MapProcess {
        /// Calls the marked function.
        fn call(self, message: DataModel) -> Result<DataModel, Error>;
    }
    impl MapProcess for fn(DataModel) -> Result<DataModel, Error> {
        fn call(self, message: DataModel) -> Result<DataModel, Error> {
            self(message)
        }
    }

    #[diagnostic::on_unimplemented(
        message = "#[filter_operator] must be used on a function `fn(DataModel) -> Result<bool, Error>`, not `{Self}`",
        label = "the filter operator's `process` takes one `DataModel` and returns `Result<bool, Error>` (`true` passes)",
        note = "WIT: `process: func(message: data-model) -> result<bool, error>` (interface `filter` of wasm-graph:processor@1.1.0)"
    )]
    /// Implemented only for the exact signature of the filter operator's `process`.
    pub trait FilterProcess {
        /// Calls the marked function.
        fn call(self, message: DataModel) -> Result<bool, Error>;
    }
    impl FilterProcess for fn(DataModel) -> Result<bool, Error> {
        fn call(self, message: DataModel) -> Result<bool, Error> {
            self(message)
        }
    }

    #[diagnostic::on_unimplemented(
        message = "#[branch_operator] must be used on a function `fn(HybridLogicalClock, DataModel) -> Result<bool, Error>`, not `{Self}`",
        label = "the branch operator's `process` takes the item's `HybridLogicalClock` and the `DataModel`, and returns `Result<bool, Error>`",
        note = "WIT: `process: func(timestamp: hybrid-logical-clock, message: data-model) -> result<bool, error>` (interface `branch` of wasm-graph:processor@1.1.0)"
    )]
    /// Implemented only for the exact signature of the branch operator's `process`.
    pub trait BranchProcess {
        /// Calls the marked function.
        fn call(self, timestamp: HybridLogicalClock, message: DataModel) -> Result<bool, Error>;
    }
    impl BranchProcess for fn(HybridLogicalClock, DataModel) -> Result<bool, Error> {
        fn call(self, timestamp: HybridLogicalClock, message: DataModel) -> Result<bool, Error> {
            self(timestamp, message)
        }
    }

    #[diagnostic::on_unimplemented(
        message = "#[accumulate_operator] must be used on a function `fn(DataModel, Vec<DataModel>) -> Result<DataModel, Error>`, not `{Self}`",
        label = "the accumulate operator's `process` takes the staged `DataModel` and a `Vec<DataModel>` batch, and returns `Result<DataModel, Error>`",
        note = "WIT: `process: func(staged: data-model, message: list<data-model>) -> result<data-model, error>` (interface `accumulate` of wasm-graph:processor@1.1.0)"
    )]
    /// Implemented only for the exact signature of the accumulate operator's `process`.
    pub trait AccumulateProcess {
        /// Calls the marked function.
        fn call(self, staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error>;
    }
    impl AccumulateProcess for fn(DataModel, Vec<DataModel>) -> Result<DataModel, Error> {
        fn call(self, staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
            self(staged, message)
        }
    }

    #[diagnostic::on_unimplemented(
        message = "#[delay_operator] must be used on a function `fn(DataModel, HybridLogicalClock) -> Result<HybridLogicalClock, Error>`, not `{Self}`",
        label = "the delay operator's `process` takes the `DataModel` and its `HybridLogicalClock`, and returns the new `Result<HybridLogicalClock, Error>`",
        note = "WIT: `process: func(data: data-model, timestamp: hybrid-logical-clock) -> result<hybrid-logical-clock, error>` (interface `delay` of wasm-graph:processor@1.1.0)"
    )]
    /// Implemented only for the exact signature of the delay operator's `process`.
    pub trait DelayProcess {
        /// Calls the marked function.
        fn call(self, data: DataModel, timestamp: HybridLogicalClock) -> Result<HybridLogicalClock, Error>;
    }
    impl DelayProcess for fn(DataModel, HybridLogicalClock) -> Result<HybridLogicalClock, Error> {
        fn call(self, data: DataModel, timestamp: HybridLogicalClock) -> Result<HybridLogicalClock, Error> {
            self(data, timestamp)
        }
    }

    /// One `init` trait per kind, so the message names the macro whose `init` is wrong.
    macro_rules! init_trait {
        ($name:ident, $message:literal) => {
            #[diagnostic::on_unimplemented(
                message = $message,
                label = "`init` takes the operation's `ModuleConfiguration` and returns `bool` (`false` refuses the configuration)",
                note = "WIT: `init: func(configuration: module-configuration) -> bool`"
            )]
            /// Implemented only for the exact signature of `init`.
            pub trait $name {
                /// Calls the marked function.
                fn call(self, configuration: ModuleConfiguration) -> bool;
            }
            impl $name for fn(ModuleConfiguration) -> bool {
                fn call(self, configuration: ModuleConfiguration) -> bool {
                    self(configuration)
                }
            }
        };
    }
    init_trait!(
        MapInit,
        "`init` of #[map_operator] must name a function `fn(ModuleConfiguration) -> bool`, not `{Self}`"
    );
    init_trait!(
        FilterInit,
        "`init` of #[filter_operator] must name a function `fn(ModuleConfiguration) -> bool`, not `{Self}`"
    );
    init_trait!(
        BranchInit,
        "`init` of #[branch_operator] must name a function `fn(ModuleConfiguration) -> bool`, not `{Self}`"
    );
    init_trait!(
        AccumulateInit,
        "`init` of #[accumulate_operator] must name a function `fn(ModuleConfiguration) -> bool`, not `{Self}`"
    );
    init_trait!(
        DelayInit,
        "`init` of #[delay_operator] must name a function `fn(ModuleConfiguration) -> bool`, not `{Self}`"
    );
}
