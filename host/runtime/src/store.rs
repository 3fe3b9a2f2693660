//! The data of one graph's wasmtime `Store`: the resource table, the WASI context (only what
//! was granted), the limits, and the services every store of the graph shares. WASI takes its
//! part through [`WasiView`]; for every other interface `linker.rs` hands over only the part it
//! needs (the services to `services/*/host.rs`, the resource table to `bindings.rs`, the
//! table and the wasi-nn context to wasi-nn).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::{Result, RuntimeError};
use crate::limits::MemoryBudget;
use crate::services::wasi_nn::NnCtx;
use crate::services::GraphServices;
use crate::stderr::StderrTail;

/// What WASI lets modules reach. Nothing by default: no environment, no files, no network, no
/// standard streams; each grant is the user's explicit choice.
#[derive(Debug, Clone, Default)]
pub struct WasiGrants {
    /// Environment variables modules see.
    pub env: Vec<(String, String)>,
    /// Host directories modules may read, as `(host path, guest path)`; read-only.
    pub dirs: Vec<(std::path::PathBuf, String)>,
    /// Let modules write to the host's standard error (debug printing).
    pub inherit_stderr: bool,
}

impl WasiGrants {
    /// The WASI context, and the tail of standard error kept for trap reports (none when the
    /// modules write to the host's own).
    fn build(&self) -> Result<(WasiCtx, Option<StderrTail>)> {
        let mut b = WasiCtx::builder();
        b.envs(&self.env);
        for (host, guest) in &self.dirs {
            b.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| RuntimeError::Graph(format!("cannot grant directory {}: {e:#}", host.display())))?;
        }
        let tail = if self.inherit_stderr {
            b.inherit_stderr();
            None
        } else {
            let tail = StderrTail::default();
            b.stderr(tail.clone());
            Some(tail)
        };
        Ok((b.build(), tail))
    }
}

/// The per-store data: resource table, WASI context (only what was granted), limits and services.
pub struct HostState {
    /// Resources handed to guests (buffers, wasi handles).
    pub table: ResourceTable,
    wasi: WasiCtx,
    stderr: Option<StderrTail>,
    /// Memory bounds of this store.
    pub limits: MemoryBudget,
    /// What every store of the graph shares.
    pub services: Arc<GraphServices>,
    /// This store's wasi-nn context (empty unless the graph uses wasi-nn).
    pub nn: NnCtx,
}

impl HostState {
    /// `limits` bounds each linear memory and their sum (the store's limiter must be set to
    /// it: `store.limiter(|s| &mut s.limits)`).
    pub fn new(services: Arc<GraphServices>, limits: MemoryBudget, grants: &WasiGrants) -> Result<Self> {
        let (wasi, stderr) = grants.build()?;
        Ok(Self {
            table: ResourceTable::new(),
            wasi,
            stderr,
            limits,
            nn: crate::services::wasi_nn::store_ctx(services.nn.as_deref()),
            services,
        })
    }
}

impl HostState {
    /// Where standard error stands now: [`HostState::stderr_since`] reads what comes after.
    pub fn stderr_mark(&self) -> u64 {
        self.stderr.as_ref().map_or(0, StderrTail::mark)
    }

    /// What the modules wrote to standard error after `mark`, as one line (empty when nothing
    /// was, or when standard error is the host's own).
    pub fn stderr_since(&self, mark: u64) -> String {
        self.stderr.as_ref().map(|t| t.since(mark)).unwrap_or_default()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
