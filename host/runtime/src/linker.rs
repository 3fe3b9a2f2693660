//! Every host interface a graph imports, added to its linker: WASI (only what was granted),
//! the operator ABI's interfaces (each implemented beside its service in `services/`), the
//! per-operation `op{i}-…` imports, and wasi-nn when the graph uses it.

use wasmtime::component::{HasSelf, Linker, ResourceTable};

use crate::bindings::named_imports;
use crate::bindings::wasm_graph::processor as wit;
use crate::identity::OpId;
use crate::services::GraphServices;
use crate::store::HostState;

/// Adds every host interface to `linker`. Per-operation imports are found by inspecting the
/// component's `implements` imports, so this needs the component being linked.
pub fn add_to_linker(
    linker: &mut Linker<HostState>,
    component: &wasmtime::component::Component,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    // The data model's buffers live in the store's resource table; every other interface is a
    // service's.
    fn table(s: &mut HostState) -> &mut ResourceTable {
        &mut s.table
    }
    fn services(s: &mut HostState) -> &GraphServices {
        &s.services
    }
    wit::types::add_to_linker::<HostState, HasSelf<ResourceTable>>(linker, table)?;
    wit::hybrid_logical_clock::add_to_linker::<HostState, HasSelf<ResourceTable>>(linker, table)?;
    wit::state_store_types::add_to_linker::<HostState, GraphServices>(linker, services)?;
    wit::logger::add_to_linker::<HostState, GraphServices>(linker, services)?;
    wit::metrics::add_to_linker::<HostState, GraphServices>(linker, services)?;
    wit::state_store::add_to_linker::<HostState, GraphServices>(linker, services)?;
    wit::schema_types::add_to_linker::<HostState, GraphServices>(linker, services)?;
    wit::schema_registry::add_to_linker::<HostState, GraphServices>(linker, services)?;
    let lookup = |name: &str| {
        OpId::from_import_name(name).ok_or_else(|| {
            wasmtime::Error::msg(format!(
                "import `{name}` does not name an operation (expected `op<N>-…`)"
            ))
        })
    };
    named_imports::wasm_graph::processor::logger::add_to_linker::<HostState, GraphServices>(
        linker, component, lookup, services,
    )?;
    named_imports::wasm_graph::processor::metrics::add_to_linker::<HostState, GraphServices>(
        linker, component, lookup, services,
    )?;
    named_imports::wasm_graph::processor::state_store::add_to_linker::<HostState, GraphServices>(
        linker, component, lookup, services,
    )?;
    Ok(())
}

/// Adds wasi-nn to `linker` when the graph's services carry it (a module imports `wasi:nn`).
pub fn add_wasi_nn_to_linker(linker: &mut Linker<HostState>, services: &GraphServices) -> wasmtime::Result<()> {
    #[cfg(feature = "wasi-nn")]
    if services.nn.is_some() {
        use crate::services::wasi_nn;
        wasi_nn::add_to_linker(linker, |s| wasi_nn::view(&mut s.table, &mut s.nn))?;
    }
    #[cfg(not(feature = "wasi-nn"))]
    let _ = (linker, services);
    Ok(())
}
