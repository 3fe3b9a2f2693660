//! The `state-store` WIT interface on [`GraphServices`]: the WIT records to and from the store's
//! own types, errors logged with the calling operation.

use std::time::Duration;

use wasmflow_wire::Hlc;

use super::SetCondition;
use crate::bindings::named_imports;
use crate::bindings::wasm_graph::processor as wit;
use crate::bindings::{HybridLogicalClock, Timespec};
use crate::identity::{OpId, OpIdentity};
use crate::services::GraphServices;

use wit::state_store_types::{
    Duration as WitDuration, SetConditions, SetOptions, StateStoreDelResponse, StateStoreError as WitStateError,
    StateStoreGetResponse, StateStoreSetResponse,
};

fn wit_hlc(h: Hlc) -> HybridLogicalClock {
    HybridLogicalClock {
        timestamp: Timespec {
            secs: h.secs,
            nanos: h.nanos,
        },
        counter: h.counter,
        node_id: h.node_id,
    }
}

/// Refusals the request caused (a stale fencing token) are `request-error`s with the reason;
/// failures of the store are `timeout`, `protocol` or `internal`, and their reason goes to the
/// log (the backend also logs, once, when a server is lost and when it is back).
fn store_error(who: &OpIdentity, e: super::StateStoreError) -> WitStateError {
    use super::StateStoreError as E;
    let (graph, operation) = (&*who.graph, &*who.operation);
    match e {
        E::StaleFencingToken { .. } => {
            tracing::debug!(graph, operation, "state store refused: {e}");
            WitStateError::RequestError(e.to_string())
        }
        E::Timeout { .. } => {
            tracing::debug!(graph, operation, "state store: {e}");
            WitStateError::Timeout
        }
        E::Protocol { .. } => {
            tracing::warn!(graph, operation, "state store: {e}");
            WitStateError::Protocol
        }
        other => {
            tracing::debug!(graph, operation, "state store: {other}");
            WitStateError::Internal
        }
    }
}

impl named_imports::wasm_graph::processor::state_store::Host for &GraphServices {
    fn get(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        _timeout: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreGetResponse, WitStateError>> {
        let who = self.identity(id);
        Ok(self
            .state
            .get(&key)
            .map(|r| StateStoreGetResponse {
                response: r.value,
                version: r.version.map(wit_hlc),
            })
            .map_err(|e| store_error(&who, e)))
    }

    fn set(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        value: Vec<u8>,
        _timeout: Option<WitDuration>,
        fencing_token: Option<HybridLogicalClock>,
        options: SetOptions,
    ) -> wasmtime::Result<Result<StateStoreSetResponse, WitStateError>> {
        let who = self.identity(id);
        let cond = match options.conditions {
            SetConditions::OnlyIfDoesNotExist => SetCondition::OnlyIfDoesNotExist,
            SetConditions::OnlyIfEqualOrDoesNotExist => SetCondition::OnlyIfEqualOrDoesNotExist,
            SetConditions::Unconditional => SetCondition::Unconditional,
        };
        let expires = options.expires.map(|d| Duration::new(d.seconds, d.nanos));
        let fence = fencing_token.as_ref().map(Hlc::from);
        Ok(self
            .state
            .set(&key, &value, fence.as_ref(), cond, expires)
            .map(|r| StateStoreSetResponse {
                response: r.done,
                version: r.version.map(wit_hlc),
            })
            .map_err(|e| store_error(&who, e)))
    }

    fn del(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        fencing_token: Option<HybridLogicalClock>,
        _timeout: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        let who = self.identity(id);
        let fence = fencing_token.as_ref().map(Hlc::from);
        Ok(self
            .state
            .del(&key, fence.as_ref())
            .map(|r| StateStoreDelResponse {
                response: r.deleted,
                version: None,
            })
            .map_err(|e| store_error(&who, e)))
    }

    fn vdel(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        value: Vec<u8>,
        fencing_token: Option<HybridLogicalClock>,
        _timeout: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        let who = self.identity(id);
        let fence = fencing_token.as_ref().map(Hlc::from);
        Ok(self
            .state
            .vdel(&key, &value, fence.as_ref())
            .map(|r| StateStoreDelResponse {
                response: r.deleted,
                version: None,
            })
            .map_err(|e| store_error(&who, e)))
    }
}

impl wit::state_store::Host for &GraphServices {
    fn get(
        &mut self,
        key: Vec<u8>,
        t: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreGetResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::get(self, OpId::UNNAMED, key, t)
    }
    fn set(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        t: Option<WitDuration>,
        f: Option<HybridLogicalClock>,
        o: SetOptions,
    ) -> wasmtime::Result<Result<StateStoreSetResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::set(self, OpId::UNNAMED, key, value, t, f, o)
    }
    fn del(
        &mut self,
        key: Vec<u8>,
        f: Option<HybridLogicalClock>,
        t: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::del(self, OpId::UNNAMED, key, f, t)
    }
    fn vdel(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        f: Option<HybridLogicalClock>,
        t: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::vdel(self, OpId::UNNAMED, key, value, f, t)
    }
}

impl wit::state_store_types::Host for &GraphServices {}
