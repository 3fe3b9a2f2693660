//! The `metrics` WIT interface on [`GraphServices`]: module counters and histograms, labelled with
//! the calling operation.

use super::MetricsError;
use crate::bindings::named_imports;
use crate::bindings::wasm_graph::processor as wit;
use crate::identity::OpId;
use crate::services::GraphServices;

fn labels(l: Option<Vec<wit::metrics::Label>>) -> Vec<(String, String)> {
    l.unwrap_or_default().into_iter().map(|l| (l.key, l.value)).collect()
}

fn metrics_error(e: MetricsError) -> wit::metrics::MetricsError {
    match e {
        MetricsError::IncompatibleType(..) => wit::metrics::MetricsError::IncompatibleType(e.to_string()),
        MetricsError::Lock => wit::metrics::MetricsError::LockError(e.to_string()),
    }
}

impl named_imports::wasm_graph::processor::metrics::Host for &GraphServices {
    fn add_to_counter(
        &mut self,
        id: OpId,
        name: String,
        value: wit::metrics::CounterValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        let wit::metrics::CounterValue::U64(v) = value;
        let who = self.identity(id);
        Ok(self
            .metrics
            .add_to_counter(&who, &name, v, &labels(l))
            .map_err(metrics_error))
    }

    fn record_to_histogram(
        &mut self,
        id: OpId,
        name: String,
        value: wit::metrics::HistogramValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        let v = match value {
            wit::metrics::HistogramValue::F64(v) => v,
            wit::metrics::HistogramValue::U64(v) => v as f64,
        };
        let who = self.identity(id);
        Ok(self
            .metrics
            .record_to_histogram(&who, &name, v, &labels(l))
            .map_err(metrics_error))
    }
}

impl wit::metrics::Host for &GraphServices {
    fn add_to_counter(
        &mut self,
        name: String,
        value: wit::metrics::CounterValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        named_imports::wasm_graph::processor::metrics::Host::add_to_counter(self, OpId::UNNAMED, name, value, l)
    }

    fn record_to_histogram(
        &mut self,
        name: String,
        value: wit::metrics::HistogramValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        named_imports::wasm_graph::processor::metrics::Host::record_to_histogram(self, OpId::UNNAMED, name, value, l)
    }
}
