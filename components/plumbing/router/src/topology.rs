//! The graph's shape as the compiler writes it into the dispatcher (`operators.topology`):
//! `[1, n, kind × n, e, (from, to, arm, input) × e]`, documented in `wit/wasmflow/graph.wit`.

/// What an operation is, as far as routing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Source,
    Map,
    Filter,
    Branch,
    Accumulate,
    Delay,
    Concatenate,
    Sink,
}

impl Kind {
    /// The code of a kind in the encoding.
    pub fn code(self) -> u32 {
        self as u32
    }

    fn from_code(code: u32) -> Option<Kind> {
        const ALL: [Kind; 8] = [
            Kind::Source,
            Kind::Map,
            Kind::Filter,
            Kind::Branch,
            Kind::Accumulate,
            Kind::Delay,
            Kind::Concatenate,
            Kind::Sink,
        ];
        ALL.get(code as usize).copied()
    }
}

/// A connection as the router follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// `Some(arm)` on a branch's outputs: taken when the branch answers `arm`.
    pub arm: Option<bool>,
    pub to: u32,
    /// Which input of `to` this is (a concatenate tells its inputs apart by it).
    pub input: u32,
}

/// The operations and, per operation, the connections out of it in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub kinds: Vec<Kind>,
    pub edges: Vec<Vec<Edge>>,
}

/// The format this router reads (the first word).
pub const FORMAT: u32 = 1;

impl Topology {
    /// Reads the encoding; the error says what is wrong with it.
    pub fn decode(words: &[u32]) -> Result<Topology, String> {
        let mut it = words.iter().copied();
        let mut next = |what: &str| {
            it.next()
                .ok_or_else(|| format!("the graph topology ends before {what}"))
        };
        let format = next("its format")?;
        if format != FORMAT {
            return Err(format!(
                "graph topology format {format}; this router reads format {FORMAT}"
            ));
        }
        let n = next("the operation count")? as usize;
        let mut kinds = Vec::with_capacity(n.min(words.len()));
        for i in 0..n {
            let code = next("an operation kind")?;
            kinds.push(Kind::from_code(code).ok_or_else(|| format!("operation {i} has unknown kind {code}"))?);
        }
        let e = next("the connection count")? as usize;
        let mut edges = vec![Vec::new(); n];
        for _ in 0..e {
            let (from, to) = (next("a connection")?, next("a connection")?);
            let arm = match next("a connection's arm")? {
                0 => None,
                1 => Some(false),
                2 => Some(true),
                other => return Err(format!("a connection has unknown arm {other}")),
            };
            let input = next("a connection's input")?;
            if from as usize >= n || to as usize >= n {
                return Err(format!("a connection {from} → {to} names an operation past {n}"));
            }
            edges[from as usize].push(Edge { arm, to, input });
        }
        Ok(Topology { kinds, edges })
    }

    /// The encoding [`Topology::decode`] reads (what the compiler writes).
    pub fn encode(&self) -> Vec<u32> {
        let mut words = vec![FORMAT, self.kinds.len() as u32];
        words.extend(self.kinds.iter().map(|k| k.code()));
        let all: Vec<(usize, &Edge)> = self
            .edges
            .iter()
            .enumerate()
            .flat_map(|(from, es)| es.iter().map(move |e| (from, e)))
            .collect();
        words.push(all.len() as u32);
        for (from, e) in all {
            let arm = match e.arm {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            };
            words.extend([from as u32, e.to, arm, e.input]);
        }
        words
    }

    /// Operation `op`'s kind, `None` past the end.
    pub fn kind(&self, op: u32) -> Option<Kind> {
        self.kinds.get(op as usize).copied()
    }

    /// The connections out of `op` (none past the end).
    pub fn edges_from(&self, op: u32) -> &[Edge] {
        self.edges.get(op as usize).map_or(&[], Vec::as_slice)
    }
}
