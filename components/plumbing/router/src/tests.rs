//! The routing rules on a fake set of operations whose values are strings with an optional time.

use super::*;

#[derive(Debug, Clone, PartialEq)]
struct V {
    ts: Option<Hlc>,
    text: String,
}

/// Maps append `+{op}`; filters drop texts containing `drop`; branches answer whether the text
/// contains `yes`; delays add 10 s (or 10 s back for `back`); accumulates join with `,`. Any
/// text containing `bad{op}` is rejected by operation `op`. Every call is logged.
#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    duplicates: usize,
}

fn hlc(secs: u64) -> Hlc {
    Hlc {
        secs,
        nanos: 0,
        counter: 0,
        node_id: "n".into(),
    }
}

fn msg(secs: u64, text: &str) -> V {
    V {
        ts: Some(hlc(secs)),
        text: text.into(),
    }
}

impl Fake {
    fn check(&mut self, what: &str, op: u32, v: &V) -> Result<(), String> {
        self.calls.push(format!("{what}{op}:{}", v.text));
        if v.text.contains(&format!("bad{op}")) {
            return Err(format!("{what} {op} refused"));
        }
        Ok(())
    }
}

impl Operations for Fake {
    type Value = V;
    fn map(&mut self, op: u32, v: V) -> Result<V, String> {
        self.check("map", op, &v)?;
        Ok(V {
            ts: v.ts,
            text: format!("{}+{op}", v.text),
        })
    }
    fn filter(&mut self, op: u32, v: V) -> Result<bool, String> {
        self.check("filter", op, &v)?;
        Ok(!v.text.contains("drop"))
    }
    fn branch(&mut self, op: u32, _ts: &Hlc, v: V) -> Result<bool, String> {
        self.check("branch", op, &v)?;
        Ok(v.text.contains("yes"))
    }
    fn delay(&mut self, op: u32, v: V, ts: &Hlc) -> Result<Hlc, String> {
        self.check("delay", op, &v)?;
        let secs = if v.text.contains("back") {
            ts.secs - 10
        } else {
            ts.secs + 10
        };
        Ok(hlc(secs))
    }
    fn accumulate(&mut self, op: u32, staged: V, items: Vec<V>) -> Result<V, String> {
        let text = items.iter().map(|v| v.text.as_str()).collect::<Vec<_>>().join(",");
        let joined = V { ts: staged.ts, text };
        self.check("accumulate", op, &joined)?;
        Ok(joined)
    }
    fn duplicate(&mut self, v: &V) -> V {
        self.duplicates += 1;
        v.clone()
    }
    fn empty_message(&mut self, ts: &Hlc) -> V {
        V {
            ts: Some(ts.clone()),
            text: String::new(),
        }
    }
    fn time_of(&self, v: &V) -> Option<Hlc> {
        v.ts.clone()
    }
    fn set_time(&mut self, v: &mut V, ts: &Hlc) {
        if v.ts.is_some() {
            v.ts = Some(ts.clone());
        }
    }
}

/// Builds a topology from kinds and `(from, to, arm)` edges, counting inputs as declared.
fn topology(kinds: &[Kind], edges: &[(u32, u32, Option<bool>)]) -> Topology {
    let mut inputs = vec![0u32; kinds.len()];
    let mut out = vec![Vec::new(); kinds.len()];
    for &(from, to, arm) in edges {
        out[from as usize].push(Edge {
            arm,
            to,
            input: inputs[to as usize],
        });
        inputs[to as usize] += 1;
    }
    Topology {
        kinds: kinds.to_vec(),
        edges: out,
    }
}

fn output(op: u32, secs: u64, text: &str) -> Event<V> {
    Event::Output {
        op,
        ts: hlc(secs),
        value: msg(secs, text),
    }
}

use Kind::*;

#[test]
fn a_chain_runs_in_order_and_counts() {
    // source → map → filter → map → sink
    let t = topology(
        &[Source, Map, Filter, Map, Sink],
        &[(0, 1, None), (1, 2, None), (2, 3, None), (3, 4, None)],
    );
    let mut r = Router::new(t);
    let mut f = Fake::default();
    let events = r.push(&mut f, 0, hlc(5), msg(5, "a"), false).unwrap();
    assert_eq!(events, vec![output(4, 5, "a+1+3")]);
    assert_eq!(f.calls, ["map1:a", "filter2:a+1", "map3:a+1"]);
    assert!(r.push(&mut f, 0, hlc(6), msg(6, "drop"), false).unwrap().is_empty());
    let counts = r.take_counts();
    assert_eq!(
        counts[1],
        Counts {
            received: 2,
            emitted: 2,
            dropped: 0
        }
    );
    assert_eq!(
        counts[2],
        Counts {
            received: 2,
            emitted: 1,
            dropped: 1
        }
    );
    assert_eq!(
        counts[3],
        Counts {
            received: 1,
            emitted: 1,
            dropped: 0
        }
    );
    assert_eq!(counts[4], Counts::default(), "sinks are the host's to count");
    assert_eq!(r.take_counts()[1], Counts::default(), "taking resets");
}

#[test]
fn branches_take_their_arm_and_fan_out_copies_all_but_the_last() {
    // source → branch; true → map 2 → sink 4, true → sink 5; false → sink 3
    let t = topology(
        &[Source, Branch, Map, Sink, Sink, Sink],
        &[
            (0, 1, None),
            (1, 3, Some(false)),
            (1, 2, Some(true)),
            (2, 4, None),
            (1, 5, Some(true)),
        ],
    );
    let mut r = Router::new(t);
    let mut f = Fake::default();
    let yes = r.push(&mut f, 0, hlc(1), msg(1, "yes"), false).unwrap();
    assert_eq!(yes, vec![output(4, 1, "yes+2"), output(5, 1, "yes")]);
    // One copy for the branch call, one for the first of the two true edges.
    assert_eq!(f.duplicates, 2);
    let no = r.push(&mut f, 0, hlc(2), msg(2, "no"), false).unwrap();
    assert_eq!(no, vec![output(3, 2, "no")]);
}

#[test]
fn windows_hand_items_back_and_close_runs_onwards() {
    // source → acc 1 → map 2 → sink 3; source → concat 4 (input 0) → sink 5
    let t = topology(
        &[Source, Accumulate, Map, Sink, Concatenate, Sink],
        &[(0, 1, None), (1, 2, None), (2, 3, None), (0, 4, None), (4, 5, None)],
    );
    let mut r = Router::new(t);
    let mut f = Fake::default();
    let events = r.push(&mut f, 0, hlc(1), msg(1, "a"), false).unwrap();
    assert_eq!(
        events,
        vec![
            Event::Held {
                op: 1,
                input: 0,
                ts: hlc(1),
                value: msg(1, "a")
            },
            Event::Held {
                op: 4,
                input: 0,
                ts: hlc(1),
                value: msg(1, "a")
            },
        ]
    );
    let closed = r
        .close(
            &mut f,
            1,
            hlc(1),
            vec![(0, hlc(1), msg(1, "a")), (0, hlc(1), msg(1, "b"))],
            false,
        )
        .unwrap();
    assert_eq!(closed, vec![output(3, 1, "a,b+2")]);
    assert_eq!(r.take_counts()[1].emitted, 1);
    // A concatenate puts its batch in event-time order (stable), bare payloads first.
    let bare = V {
        ts: None,
        text: "bare".into(),
    };
    let merged = r
        .close(
            &mut f,
            4,
            hlc(3),
            vec![
                (0, hlc(3), msg(3, "late")),
                (1, hlc(2), msg(2, "early")),
                (0, hlc(3), bare.clone()),
            ],
            false,
        )
        .unwrap();
    assert_eq!(
        merged,
        vec![
            Event::Output {
                op: 5,
                ts: hlc(3),
                value: bare
            },
            output(5, 2, "early"),
            output(5, 3, "late"),
        ]
    );
}

#[test]
fn rejections_are_reported_with_the_item_only_when_asked() {
    let t = topology(
        &[Source, Map, Filter, Sink],
        &[(0, 1, None), (1, 2, None), (2, 3, None)],
    );
    let mut r = Router::new(t);
    let mut f = Fake::default();
    let events = r.push(&mut f, 0, hlc(1), msg(1, "bad1"), false).unwrap();
    assert_eq!(
        events,
        vec![Event::Rejected {
            op: 1,
            ts: hlc(1),
            error: "map 1 refused".into(),
            value: None
        }]
    );
    assert_eq!(f.duplicates, 0, "a map's argument is copied only to keep it");
    let events = r.push(&mut f, 0, hlc(1), msg(1, "bad1"), true).unwrap();
    assert!(matches!(&events[0], Event::Rejected { value: Some(v), .. } if v.text == "bad1"));
    let events = r.push(&mut f, 0, hlc(1), msg(1, "bad2"), true).unwrap();
    assert!(matches!(&events[0], Event::Rejected { op: 2, value: Some(v), .. } if v.text == "bad2+1"));
}

#[test]
fn a_delay_moves_time_forward_only() {
    let t = topology(&[Source, Delay, Sink], &[(0, 1, None), (1, 2, None)]);
    let mut r = Router::new(t);
    let mut f = Fake::default();
    assert_eq!(
        r.push(&mut f, 0, hlc(20), msg(20, "x"), false).unwrap(),
        vec![output(2, 30, "x")]
    );
    let back = r.push(&mut f, 0, hlc(20), msg(20, "back"), false).unwrap();
    assert!(
        matches!(&back[0], Event::Rejected { op: 1, error, .. } if error.starts_with("delay moved the timestamp back")),
        "{back:?}"
    );
}

#[test]
fn an_accumulate_that_refuses_its_window_is_one_rejection() {
    let t = topology(&[Source, Accumulate, Sink], &[(0, 1, None), (1, 2, None)]);
    let mut r = Router::new(t);
    let mut f = Fake::default();
    let events = r
        .close(
            &mut f,
            1,
            hlc(1),
            vec![(0, hlc(1), msg(1, "bad1")), (0, hlc(1), msg(1, "x"))],
            true,
        )
        .unwrap();
    assert_eq!(
        events,
        vec![Event::Rejected {
            op: 1,
            ts: hlc(1),
            error: "accumulate 1 refused".into(),
            value: None
        }]
    );
}

#[test]
fn pushing_into_what_is_not_a_source_is_an_error() {
    let t = topology(&[Source, Map, Sink], &[(0, 1, None), (1, 2, None)]);
    let mut r = Router::new(t);
    assert!(r.push(&mut Fake::default(), 1, hlc(1), msg(1, "a"), false).is_err());
    assert!(r.close(&mut Fake::default(), 1, hlc(1), vec![], false).is_err());
}

#[test]
fn the_topology_round_trips_and_bad_encodings_are_refused() {
    let t = topology(
        &[Source, Branch, Map, Sink, Sink],
        &[(0, 1, None), (1, 2, Some(true)), (1, 3, Some(false)), (2, 4, None)],
    );
    assert_eq!(Topology::decode(&t.encode()).unwrap(), t);
    assert!(Topology::decode(&[]).unwrap_err().contains("format"));
    assert!(Topology::decode(&[2, 0, 0]).unwrap_err().contains("format 2"));
    assert!(Topology::decode(&[1, 1, 9, 0]).unwrap_err().contains("unknown kind 9"));
    assert!(Topology::decode(&[1, 1, 0, 1, 0, 5, 0, 0])
        .unwrap_err()
        .contains("past 1"));
    assert!(Topology::decode(&[1, 2, 0, 7, 1, 0, 1])
        .unwrap_err()
        .contains("ends before"));
}
