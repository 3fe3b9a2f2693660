//! The `logger` interface: module log records become `tracing` events that carry the graph and
//! the operation, so a line in a log always says which node wrote it.

use crate::bindings::wasm_graph::processor::logger::Level;
use crate::identity::OpIdentity;

pub mod host;

/// Forwards one module log record to `tracing` at the matching level (`critical` → error with
/// `critical = true`, since tracing has no level above error).
pub fn log(who: &OpIdentity, level: Level, context: &str, message: &str) {
    let (graph, operation) = (&*who.graph, &*who.operation);
    match level {
        Level::Trace => tracing::trace!(target: "wasmflow::module", graph, operation, context, "{message}"),
        Level::Debug => tracing::debug!(target: "wasmflow::module", graph, operation, context, "{message}"),
        Level::Info => tracing::info!(target: "wasmflow::module", graph, operation, context, "{message}"),
        Level::Warn => tracing::warn!(target: "wasmflow::module", graph, operation, context, "{message}"),
        Level::Error => tracing::error!(target: "wasmflow::module", graph, operation, context, "{message}"),
        Level::Critical => {
            tracing::error!(target: "wasmflow::module", graph, operation, context, critical = true, "{message}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_record_names_graph_and_operation() {
        let cap = Capture::default();
        let w = cap.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let who = OpIdentity {
            graph: "g1".into(),
            operation: "module-temperature/map".into(),
        };
        tracing::subscriber::with_default(sub, || {
            log(&who, Level::Warn, "temp", "too hot");
            log(&who, Level::Critical, "temp", "melting");
        });
        let out = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].contains("WARN") && lines[0].contains("too hot"), "{out}");
        for l in &lines {
            assert!(l.contains("graph=\"g1\"") || l.contains("graph=g1"), "{l}");
            assert!(l.contains("module-temperature/map"), "{l}");
        }
        assert!(
            lines[1].contains("ERROR") && lines[1].contains("critical=true"),
            "{out}"
        );
    }
}
