//! The `metrics` interface and the runtime's own per-node metrics, in one Prometheus registry
//! served as text over HTTP (`--metrics ADDR`).
//!
//! Modules name their metrics at run time, so their families are registered on first use; every
//! sample carries `graph` and `operation` labels added by the host, which modules cannot forge.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use thiserror::Error;

use crate::identity::OpIdentity;

pub mod endpoint;
pub mod host;

/// A metric's label set.
pub type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Why a module's metric call was refused (maps onto the WIT `metrics-error`).
#[derive(Debug, Error, PartialEq)]
pub enum MetricsError {
    /// The name (as sanitized) and the type it was first used as, `counter` or `histogram`: a
    /// name keeps that type for the life of the process.
    #[error("metric `{0}` is already registered as a {1}")]
    IncompatibleType(String, &'static str),
    /// A thread panicked while holding the registry (a host bug); the call is refused.
    #[error("metrics registry lock poisoned")]
    Lock,
}

enum ModuleMetric {
    Counter(Family<Labels, Counter>),
    Histogram(HistogramFamily),
}

impl ModuleMetric {
    fn new_counter() -> (Self, &'static str) {
        (ModuleMetric::Counter(Family::default()), "Counter reported by a module")
    }

    fn new_histogram() -> (Self, &'static str) {
        (
            ModuleMetric::Histogram(Family::new_with_constructor(module_histogram)),
            "Histogram reported by a module",
        )
    }
}

fn latency_histogram() -> Histogram {
    // 1 µs … ~16 s in powers of 2: covers a native-speed map and a slow inference alike.
    Histogram::new(exponential_buckets(1e-6, 2.0, 24))
}

fn module_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 16))
}

/// The runtime's own per-node series, labelled by graph and operation.
#[derive(Clone)]
pub struct NodeMetrics {
    /// `wasmflow_messages_in_total`: items delivered to the operation, those entering a window
    /// included.
    pub messages_in: Family<Labels, Counter>,
    /// `wasmflow_messages_out_total`: items it passed on (for a sink, outputs it produced).
    pub messages_out: Family<Labels, Counter>,
    /// `wasmflow_messages_dropped_total`: items that went no further here: filtered out, or
    /// rejected or trapped on (those also count in `errors` or `traps`).
    pub dropped: Family<Labels, Counter>,
    /// `wasmflow_operator_errors_total`: items an operator rejected (its call returned `Err`,
    /// or a result the host cannot use).
    pub errors: Family<Labels, Counter>,
    /// `wasmflow_operator_traps_total`: traps; after each the graph instance is rebuilt.
    pub traps: Family<Labels, Counter>,
    /// `wasmflow_operator_latency_seconds`: seconds per call, of one call in
    /// `graph::LATENCY_SAMPLE`.
    pub latency_seconds: HistogramFamily,
}

/// One registry per process: module metrics and runtime metrics together.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    modules: Arc<Mutex<HashMap<String, ModuleMetric>>>,
    /// Counters of the host's own parts beyond the nodes ([`Metrics::host_counter`]).
    host: Arc<Mutex<HashMap<String, Family<Labels, Counter>>>>,
    /// Pages the endpoint serves beside `/metrics` ([`Metrics::add_page`]).
    pages: Arc<Mutex<Vec<Page>>>,
    /// Per-node runtime series (messages in/out/dropped, errors, traps, latency).
    pub nodes: NodeMetrics,
}

/// Renders a page of the metrics endpoint each time it is asked for.
pub type PageRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// An extra page of the metrics endpoint.
#[derive(Clone)]
struct Page {
    path: String,
    content_type: &'static str,
    render: PageRenderer,
}

/// One operation's runtime counts, read at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// `wasmflow_messages_in_total`.
    pub messages_in: u64,
    /// `wasmflow_messages_out_total`.
    pub messages_out: u64,
    /// `wasmflow_messages_dropped_total`.
    pub dropped: u64,
    /// `wasmflow_operator_errors_total`.
    pub errors: u64,
    /// `wasmflow_operator_traps_total`.
    pub traps: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the runtime's series registered (names prefixed `wasmflow_`); module
    /// metrics are added on first use. Clones share it: make one per process, so one
    /// `--metrics` endpoint serves every graph.
    pub fn new() -> Self {
        Self::with_registry(Registry::with_prefix("wasmflow"))
    }

    /// As [`Metrics::new`], every series labelled `instance="<instance>"`: which of the
    /// processes running a graph (`run --instance`) it comes from, when several scrape into
    /// one Prometheus.
    pub fn with_instance(instance: &str) -> Self {
        let labels = [(Cow::Borrowed("instance"), Cow::Owned(instance.to_owned()))];
        Self::with_registry(Registry::with_prefix_and_labels("wasmflow", labels.into_iter()))
    }

    fn with_registry(mut registry: Registry) -> Self {
        let nodes = NodeMetrics {
            messages_in: Family::default(),
            messages_out: Family::default(),
            dropped: Family::default(),
            errors: Family::default(),
            traps: Family::default(),
            latency_seconds: Family::new_with_constructor(latency_histogram),
        };
        registry.register(
            "messages_in",
            "Items that entered an operation",
            nodes.messages_in.clone(),
        );
        registry.register("messages_out", "Items an operation emitted", nodes.messages_out.clone());
        registry.register(
            "messages_dropped",
            "Items an operation dropped (filter, error, trap)",
            nodes.dropped.clone(),
        );
        registry.register(
            "operator_errors",
            "process() calls that returned Err",
            nodes.errors.clone(),
        );
        registry.register(
            "operator_traps",
            "Traps raised while an operation ran",
            nodes.traps.clone(),
        );
        registry.register(
            "operator_latency_seconds",
            "Time spent in one call of an operation (one call in 16 is timed)",
            nodes.latency_seconds.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            modules: Default::default(),
            host: Default::default(),
            pages: Default::default(),
            nodes,
        }
    }

    /// A counter family of the host's own (a transport's, a connection check's), registered as
    /// `wasmflow_<name>` on first use; the same family for the same name afterwards.
    pub fn host_counter(&self, name: &str, help: &str) -> Family<Labels, Counter> {
        let mut host = self.host.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        host.entry(name.to_owned())
            .or_insert_with(|| {
                let family = Family::<Labels, Counter>::default();
                self.registry
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .register(name, help.to_owned(), family.clone());
                family
            })
            .clone()
    }

    /// The counts of operation `operation` of graph `graph` (zero for one that never ran).
    pub fn node_counts(&self, graph: &str, operation: &str) -> NodeCounts {
        let l = Self::node_labels(&OpIdentity {
            graph: graph.into(),
            operation: operation.into(),
        });
        let n = &self.nodes;
        NodeCounts {
            messages_in: n.messages_in.get_or_create(&l).get(),
            messages_out: n.messages_out.get_or_create(&l).get(),
            dropped: n.dropped.get_or_create(&l).get(),
            errors: n.errors.get_or_create(&l).get(),
            traps: n.traps.get_or_create(&l).get(),
        }
    }

    /// Serves `render()` at `path` (with `content_type`) beside `/metrics`: the picture of the
    /// running graphs with their counts at `/graph`.
    pub fn add_page(&self, path: &str, content_type: &'static str, render: PageRenderer) {
        self.pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Page {
                path: path.to_owned(),
                content_type,
                render,
            });
    }

    /// The page at `path`, rendered now, with its content type.
    fn page(&self, path: &str) -> Option<(&'static str, String)> {
        let page = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|p| p.path == path)
            .cloned()?;
        Some((page.content_type, (page.render)()))
    }

    /// The label set the runtime attaches to everything a node does.
    pub fn node_labels(who: &OpIdentity) -> Labels {
        vec![
            ("graph".into(), who.graph.to_string()),
            ("operation".into(), who.operation.to_string()),
        ]
    }

    fn labels(who: &OpIdentity, extra: &[(String, String)]) -> Labels {
        let mut l = Self::node_labels(who);
        l.extend(extra.iter().filter(|(k, _)| k != "graph" && k != "operation").cloned());
        l
    }

    /// `add-to-counter` from a module.
    pub fn add_to_counter(
        &self,
        who: &OpIdentity,
        name: &str,
        value: u64,
        labels: &[(String, String)],
    ) -> Result<(), MetricsError> {
        self.with_module_metric(name, ModuleMetric::new_counter, |m, name| match m {
            ModuleMetric::Counter(f) => {
                f.get_or_create(&Self::labels(who, labels)).inc_by(value);
                Ok(())
            }
            ModuleMetric::Histogram(_) => Err(MetricsError::IncompatibleType(name, "histogram")),
        })
    }

    /// `record-to-histogram` from a module.
    pub fn record_to_histogram(
        &self,
        who: &OpIdentity,
        name: &str,
        value: f64,
        labels: &[(String, String)],
    ) -> Result<(), MetricsError> {
        self.with_module_metric(name, ModuleMetric::new_histogram, |m, name| match m {
            ModuleMetric::Histogram(f) => {
                f.get_or_create(&Self::labels(who, labels)).observe(value);
                Ok(())
            }
            ModuleMetric::Counter(_) => Err(MetricsError::IncompatibleType(name, "counter")),
        })
    }

    /// Finds the module metric `name` (sanitized), registering it with `make` on first use, and
    /// hands it to `use_it`; a name keeps the type it was first used with.
    fn with_module_metric(
        &self,
        name: &str,
        make: fn() -> (ModuleMetric, &'static str),
        use_it: impl FnOnce(&ModuleMetric, String) -> Result<(), MetricsError>,
    ) -> Result<(), MetricsError> {
        let name = sanitize(name);
        let mut modules = self.modules.lock().map_err(|_| MetricsError::Lock)?;
        let metric = match modules.entry(name.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let (metric, help) = make();
                let mut registry = self.registry.lock().map_err(|_| MetricsError::Lock)?;
                match &metric {
                    ModuleMetric::Counter(f) => registry.register(format!("module_{name}"), help, f.clone()),
                    ModuleMetric::Histogram(f) => registry.register(format!("module_{name}"), help, f.clone()),
                }
                e.insert(metric)
            }
        };
        use_it(metric, name)
    }

    /// The whole registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &r);
        }
        out
    }
}

/// Prometheus metric names allow `[a-zA-Z0-9_:]`; anything else becomes `_`.
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> OpIdentity {
        OpIdentity {
            graph: "g".into(),
            operation: "module-temperature/map".into(),
        }
    }

    #[test]
    fn module_counter_carries_operation_label() {
        let m = Metrics::new();
        m.add_to_counter(&who(), "converted", 2, &[("unit".into(), "C".into())])
            .unwrap();
        m.add_to_counter(&who(), "converted", 3, &[("unit".into(), "C".into())])
            .unwrap();
        let text = m.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("wasmflow_module_converted_total{"))
            .expect(&text);
        assert!(line.contains("operation=\"module-temperature/map\""), "{line}");
        assert!(line.contains("unit=\"C\""), "{line}");
        assert!(line.ends_with(" 5"), "{line}");
    }

    #[test]
    fn a_name_keeps_its_type() {
        let m = Metrics::new();
        m.add_to_counter(&who(), "x", 1, &[]).unwrap();
        assert_eq!(
            m.record_to_histogram(&who(), "x", 1.0, &[]),
            Err(MetricsError::IncompatibleType("x".into(), "counter"))
        );
        m.record_to_histogram(&who(), "h", 0.5, &[]).unwrap();
        assert!(matches!(
            m.add_to_counter(&who(), "h", 1, &[]),
            Err(MetricsError::IncompatibleType(_, "histogram"))
        ));
    }

    #[test]
    fn modules_cannot_forge_the_operation_label() {
        let m = Metrics::new();
        m.add_to_counter(&who(), "c", 1, &[("operation".into(), "other".into())])
            .unwrap();
        assert!(!m.render().contains("operation=\"other\""));
    }

    #[test]
    fn every_series_carries_the_instance() {
        let m = Metrics::with_instance("edge-2");
        m.nodes.messages_in.get_or_create(&Metrics::node_labels(&who())).inc();
        m.add_to_counter(&who(), "converted", 1, &[]).unwrap();
        let text = m.render();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
        assert!(samples.len() >= 2, "{text}");
        for l in samples {
            assert!(l.contains("instance=\"edge-2\""), "{l}");
        }
    }
}
