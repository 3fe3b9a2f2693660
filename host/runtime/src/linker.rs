//! Every host interface a graph imports, added to its linker: WASI (only what was granted),
//! the operator ABI's interfaces (each implemented beside its service in `services/`), the
//! per-operation `op{i}-…` imports, and wasi-nn when the graph uses it.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::named_imports;
use crate::bindings::wasm_graph::processor as wit;
use crate::identity::OpId;
use crate::store::{GraphServices, HostState};

/// Adds every host interface to `linker`. Per-operation imports are found by inspecting the
/// component's `implements` imports, so this needs the component being linked.
pub fn add_to_linker(linker: &mut Linker<HostState>, component: &wasmtime::component::Component) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    fn getter(s: &mut HostState) -> &mut HostState {
        s
    }
    wit::types::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::hybrid_logical_clock::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::state_store_types::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::logger::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::metrics::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::state_store::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::schema_types::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::schema_registry::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    let lookup = |name: &str| {
        OpId::from_import_name(name).ok_or_else(|| {
            wasmtime::Error::msg(format!(
                "import `{name}` does not name an operation (expected `op<N>-…`)"
            ))
        })
    };
    named_imports::wasm_graph::processor::logger::add_to_linker::<HostState, HasSelf<HostState>>(
        linker, component, lookup, getter,
    )?;
    named_imports::wasm_graph::processor::metrics::add_to_linker::<HostState, HasSelf<HostState>>(
        linker, component, lookup, getter,
    )?;
    named_imports::wasm_graph::processor::state_store::add_to_linker::<HostState, HasSelf<HostState>>(
        linker, component, lookup, getter,
    )?;
    Ok(())
}

/// Adds wasi-nn to `linker` when the graph's services carry it (a module imports `wasi:nn`).
pub fn add_wasi_nn_to_linker(linker: &mut Linker<HostState>, services: &GraphServices) -> anyhow::Result<()> {
    #[cfg(feature = "wasi-nn")]
    if services.nn.is_some() {
        use crate::services::wasi_nn;
        wasi_nn::add_to_linker(linker, |s| wasi_nn::view(&mut s.table, &mut s.nn))?;
    }
    #[cfg(not(feature = "wasi-nn"))]
    let _ = (linker, services);
    Ok(())
}
