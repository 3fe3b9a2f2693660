//! Deliberately bad operators (`components/testing/faulty`): an `Err`, a panic, `unreachable`,
//! an endless loop and a memory hog each drop only the item that caused them; the graph keeps
//! running, the instance is rebuilt after a trap, and items waiting in windows survive it.

use std::time::{Duration, Instant};

use crate::support::*;
use wasmflow_compose::{Override, Routing};
use wasmflow_runtime::graph::RunOptions;
use wasmflow_transport::Destination;

const T0: u64 = 1_767_225_600_000;

/// source → faulty map → faulty accumulate (emits `{"count":N}` per window) → sink.
fn faulty_graph(h: &Harness) -> std::path::PathBuf {
    module("faulty");
    h.write_graph(
        "faulty.yaml",
        "faults",
        "A faulty operator and a window after it",
        r#"moduleConfigurations:
  - name: faulty/map
    parameters:
      init:
        name: init
        description: "ok | false | trap"
        default: "ok"
operations:
  - operationType: source
    name: source
  - operationType: map
    name: faulty/map
    module: "test/faulty:1.0.0"
  - operationType: accumulate
    name: faulty/accumulate
    module: "test/faulty:1.0.0"
  - operationType: sink
    name: sink
connections:
  - from: { name: source }
    to: { name: faulty/map }
  - from: { name: faulty/map }
    to: { name: faulty/accumulate }
  - from: { name: faulty/accumulate }
    to: { name: sink }
"#,
    )
}

fn options() -> RunOptions {
    RunOptions {
        dead_letter: true,
        call_timeout: Duration::from_millis(300),
        max_memory: 64 << 20,
        ..Default::default()
    }
}

/// One good item before and after the bad one, all in the same window: the window must count
/// exactly the two good ones, and the bad one must come out as a dead letter.
fn survives(fault: &str, expect_trap: bool) {
    survives_with(fault, expect_trap, options());
}

fn survives_with(fault: &str, expect_trap: bool, options: RunOptions) {
    // A trap in the composed router's call is replayed through host routing, which traps again.
    let per_trap = if options.routing == Routing::Composed { 2 } else { 1 };
    let h = Harness::new();
    let mut g = h.start(&faulty_graph(&h), options);
    let mut out = g.push(None, input(r#"{"ok":1}"#, T0)).unwrap();
    out.extend(g.push(None, input(&format!(r#"{{"fault":"{fault}"}}"#), T0)).unwrap());
    out.extend(g.push(None, input(r#"{"ok":2}"#, T0)).unwrap());
    assert_eq!(
        g.rebuilds(),
        u64::from(expect_trap) * per_trap,
        "rebuilds after {fault}"
    );
    out.extend(g.flush().unwrap());

    let dead: Vec<_> = out
        .iter()
        .filter(|o| matches!(o.destination, Destination::DeadLetter { .. }))
        .collect();
    assert_eq!(dead.len(), 1, "{fault}: {out:?}");
    let Destination::DeadLetter { operation, error } = &dead[0].destination else {
        unreachable!()
    };
    assert_eq!(operation, "faulty/map");
    assert_eq!(expect_trap, error.starts_with("trap:"), "{fault}: {error}");
    if fault == "panic" {
        // The operator's own message, from its standard error: the trap alone says `unreachable`.
        assert!(error.contains(faulty::PANIC_MESSAGE), "{error}");
    }
    assert_eq!(payload(dead[0]), format!(r#"{{"fault":"{fault}"}}"#));
    assert_eq!(prop(dead[0], "operation"), Some("faulty/map"));

    let sunk: Vec<_> = out
        .iter()
        .filter(|o| matches!(o.destination, Destination::Sink(_)))
        .map(payload)
        .collect();
    assert_eq!(sunk, [r#"{"count":2}"#], "{fault}: the window kept both good items");
    let text = h.runtime.metrics.render();
    let counter = if expect_trap {
        "wasmflow_operator_traps_total"
    } else {
        "wasmflow_operator_errors_total"
    };
    assert!(
        text.lines()
            .any(|l| l.starts_with(counter) && l.contains("operation=\"faulty/map\"") && l.ends_with(" 1")),
        "{counter} for faulty/map in\n{text}"
    );
}

#[test]
fn an_err_drops_only_that_item() {
    survives("err", false);
}

#[test]
fn a_panic_traps_and_the_graph_is_rebuilt() {
    survives("panic", true);
}

#[test]
fn unreachable_traps_and_the_graph_is_rebuilt() {
    survives("unreachable", true);
}

/// The same faults in a graph composed with its router (`--router composed`): the same
/// dead letter, window contents and counters as with host routing.
fn survives_composed(fault: &str, expect_trap: bool) {
    let options = RunOptions {
        routing: Routing::Composed,
        ..options()
    };
    survives_with(fault, expect_trap, options);
}

#[test]
fn an_err_drops_only_that_item_with_the_router_composed() {
    survives_composed("err", false);
}

#[test]
fn a_panic_with_the_router_composed_is_replayed_and_loses_nothing() {
    survives_composed("panic", true);
}

#[test]
fn an_endless_loop_is_interrupted() {
    let started = Instant::now();
    survives("loop", true);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the loop was cut off by the call timeout"
    );
}

#[test]
fn a_memory_hog_hits_the_limit_and_traps() {
    survives("oom", true);
}

/// The graph's memory budget is the sum of every module's memory: a budget smaller than what
/// the modules need to start is refused at start-up, though each module is far below its own
/// bound; a budget that fits starts, and its hog still traps without taking the graph down.
#[test]
fn the_graph_budget_bounds_the_sum_of_its_modules() {
    let h = Harness::new();
    let loaded = h.load(&faulty_graph(&h));
    let tight = RunOptions {
        max_memory: 256 << 20,
        max_graph_memory: 1 << 20,
        ..options()
    };
    let e = match h.runtime.start(&loaded, tight) {
        Ok(_) => panic!("1 MiB for all modules together must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("instantiating the graph"), "{e}");
    survives_with(
        "oom",
        true,
        RunOptions {
            max_memory: 256 << 20,
            max_graph_memory: 48 << 20,
            ..options()
        },
    );
}

#[test]
fn a_trap_inside_a_window_keeps_the_other_windows() {
    trap_inside_a_window(options(), 1);
}

#[test]
fn a_trap_inside_a_window_with_the_router_composed_keeps_the_other_windows() {
    let options = RunOptions {
        routing: Routing::Composed,
        ..options()
    };
    trap_inside_a_window(options, 2);
}

fn trap_inside_a_window(options: RunOptions, rebuilds: u64) {
    let h = Harness::new();
    let mut g = h.start(&faulty_graph(&h), options);
    // The window at T0+5 holds two items when the map traps on a third item of that time.
    let mut out = g.push(None, input(r#"{"ok":1}"#, T0)).unwrap();
    out.extend(g.push(None, input(r#"{"ok":2}"#, T0 + 5)).unwrap());
    out.extend(g.push(None, input(r#"{"ok":3}"#, T0 + 5)).unwrap());
    let before = g.pending();
    let dead = g.push(None, input(r#"{"fault":"panic"}"#, T0 + 5)).unwrap();
    assert_eq!(
        (before, g.pending(), g.rebuilds()),
        (2, 2, rebuilds),
        "the rebuild kept every pending item"
    );
    assert!(
        matches!(dead[..], [ref d] if matches!(d.destination, Destination::DeadLetter { .. })),
        "{dead:?}"
    );
    out.extend(g.flush().unwrap());
    let sunk: Vec<_> = out.iter().map(payload).collect();
    assert_eq!(
        sunk,
        [r#"{"count":1}"#, r#"{"count":2}"#],
        "T0's window closed when T0+5 arrived"
    );
}

fn start_error(init: &str) -> String {
    let h = Harness::new();
    let loaded = h.load(&faulty_graph(&h));
    let options = RunOptions {
        overrides: vec![Override::parse(&format!("faulty/map.init={init}")).unwrap()],
        ..options()
    };
    match h.runtime.start(&loaded, options) {
        Ok(_) => panic!("init={init} must stop start-up"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn init_returning_false_stops_startup_naming_the_operation() {
    let e = start_error("false");
    assert!(e.contains("operation `faulty/map` refused its configuration"), "{e}");
    assert!(e.contains("init=false"), "the configuration is shown: {e}");
}

#[test]
fn init_trapping_stops_startup_naming_the_operation() {
    let e = start_error("trap");
    assert!(e.contains("operation `faulty/map` trapped in init"), "{e}");
    assert!(
        e.contains(faulty::INIT_PANIC_MESSAGE),
        "the module's panic message: {e}"
    );
}
