//! Who is calling: every per-operation import (`op{i}-logger`, `op{i}-metrics`,
//! `op{i}-state-store`) tells the host the index of its operation, so logs, metric labels and
//! state-store errors name the node that caused them.

use std::sync::Arc;

/// Index of an operation in its graph's manifest; [`OpId::UNNAMED`] for imports that were not
/// given a per-operation name (a module run on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(pub u32);

impl OpId {
    /// The id of a shared (not per-operation) import.
    pub const UNNAMED: OpId = OpId(u32::MAX);

    /// Reads the operation index from a per-operation import name such as `op3-logger`, by
    /// the naming contract the compiler writes ([`wasmflow_compose::naming`]).
    pub fn from_import_name(name: &str) -> Option<OpId> {
        wasmflow_compose::naming::operation_index(name).map(OpId)
    }
}

/// Who is speaking: the graph and the operation an import instance belongs to.
#[derive(Debug, Clone)]
pub struct OpIdentity {
    /// The graph's name.
    pub graph: Arc<str>,
    /// The operation's name.
    pub operation: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::OpId;

    #[test]
    fn op_ids_come_from_import_names() {
        assert_eq!(OpId::from_import_name("op3-logger"), Some(OpId(3)));
        assert_eq!(OpId::from_import_name("op12-state-store"), Some(OpId(12)));
        assert_eq!(OpId::from_import_name("logger"), None);
        assert_eq!(OpId::from_import_name("opx-logger"), None);
        assert_eq!(OpId::from_import_name("op3logger"), None);
    }
}
