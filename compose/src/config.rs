//! Operation parameters and run-time overrides: what each operation's `init` receives.
//!
//! A parameter's value is its `default` from the graph, overridden by values given with
//! `-c key=value` (global) or `-c operation.key=value` (one operation). The same rules run at
//! compose time (`ValidatedGraph::configuration_for`) and at run time
//! (`Manifest::configuration_for`), so a composed artifact behaves like its YAML.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ComposeError;
use crate::model::OperationKind;

/// A parameter an operation declares (from `moduleConfigurations[].parameters.<key>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    /// The map key: what the module's `init` receives as the property name.
    pub key: String,
    /// Free text for `wasmflow inspect`.
    #[serde(default)]
    pub description: Option<String>,
    /// When true, a value must be known (default or override) before the graph starts.
    #[serde(default)]
    pub required: bool,
    /// The value used when no override is given.
    #[serde(default)]
    pub default: Option<String>,
}

/// One `-c` value: `key=value` for every operation, or `operation.key=value` for one.
///
/// Operation names contain `/` and may contain `.`, so the operation is split off at the LAST
/// `.` before the `=`; a key can therefore not contain `.` when given per operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Override {
    /// The operation it applies to; `None` for a global override.
    pub operation: Option<String>,
    /// The parameter key.
    pub key: String,
    /// The value (everything after the first `=`; may itself contain `=`).
    pub value: String,
}

impl Override {
    /// Parses `key=value` or `operation.key=value`.
    pub fn parse(input: &str) -> Result<Override, ComposeError> {
        let invalid = |reason: &str| ComposeError::InvalidOverride {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (lhs, value) = input.split_once('=').ok_or_else(|| invalid("it has no `=`"))?;
        if lhs.trim().is_empty() {
            return Err(invalid("the key before `=` is empty"));
        }
        match lhs.rsplit_once('.') {
            Some((operation, key)) => {
                if operation.is_empty() {
                    return Err(invalid("the operation before `.` is empty"));
                }
                if key.is_empty() {
                    return Err(invalid("the key after the last `.` is empty"));
                }
                Ok(Override {
                    operation: Some(operation.to_string()),
                    key: key.to_string(),
                    value: value.to_string(),
                })
            }
            None => Ok(Override {
                operation: None,
                key: lhs.to_string(),
                value: value.to_string(),
            }),
        }
    }
}

impl FromStr for Override {
    type Err = ComposeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Override::parse(s)
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.operation {
            Some(op) => write!(f, "{op}.{}={}", self.key, self.value),
            None => write!(f, "{}={}", self.key, self.value),
        }
    }
}

/// The view of one operation that configuration resolution needs.
pub(crate) struct ConfigTarget<'a> {
    pub name: &'a str,
    /// True for module-backed operations (not source/sink/concatenate).
    pub is_operator: bool,
    pub parameters: &'a [Parameter],
}

impl<'a> ConfigTarget<'a> {
    /// The view of operation `name` of type `kind` (of a graph or of a manifest).
    pub fn new(name: &'a str, kind: OperationKind, parameters: &'a [Parameter]) -> Self {
        ConfigTarget {
            name,
            is_operator: !kind.is_plumbing(),
            parameters,
        }
    }
}

/// Computes the `(key, value)` pairs for operation `operation`.
///
/// Rules, in order:
/// 1. declared parameters start at their `default`;
/// 2. global overrides (`key=value`) apply to every operation that declares `key`; when no
///    operation of the graph declares it, to every module-backed operation (so a value is never
///    silently dropped);
/// 3. operation overrides (`op.key=value`) apply to that operation, declared or not, and win
///    over global ones; among equals the later override wins;
/// 4. a `required` parameter still without value is an error.
///
/// Overrides naming an operation the graph lacks are an error too, whichever operation is asked
/// about, so a typo is caught at the first call.
pub(crate) fn resolve_configuration<'a>(
    file: &str,
    targets: impl IntoIterator<Item = ConfigTarget<'a>>,
    operation: &str,
    overrides: &[Override],
) -> Result<Vec<(String, String)>, ComposeError> {
    ConfigResolver::new(file, targets, overrides)?.resolve(operation)
}

/// [`resolve_configuration`] for many operations of one graph: what does not depend on the
/// operation (the check of the overrides' operations, which keys the graph declares, the
/// overrides of each operation) is computed once, so resolving every operation takes time linear
/// in the graph and the overrides rather than quadratic.
pub(crate) struct ConfigResolver<'a, 'o> {
    file: String,
    targets: Vec<ConfigTarget<'a>>,
    by_name: HashMap<&'a str, usize>,
    /// Keys declared by at least one operation.
    declared: HashSet<&'a str>,
    /// The global overrides, in order.
    global: Vec<&'o Override>,
    /// The overrides of each operation, in order.
    scoped: HashMap<&'o str, Vec<&'o Override>>,
}

impl<'a, 'o> ConfigResolver<'a, 'o> {
    /// Indexes `targets` (the operations of a graph or manifest) and checks that every scoped
    /// override names one of them.
    pub fn new(
        file: &str,
        targets: impl IntoIterator<Item = ConfigTarget<'a>>,
        overrides: &'o [Override],
    ) -> Result<Self, ComposeError> {
        let targets: Vec<ConfigTarget<'a>> = targets.into_iter().collect();
        let mut by_name = HashMap::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            by_name.entry(t.name).or_insert(i);
        }
        let mut global = Vec::new();
        let mut scoped: HashMap<&'o str, Vec<&'o Override>> = HashMap::new();
        for ov in overrides {
            match &ov.operation {
                Some(op) if !by_name.contains_key(op.as_str()) => {
                    return Err(ComposeError::UnknownOverrideOperation {
                        file: file.to_string(),
                        input: ov.to_string(),
                        operation: op.clone(),
                        known: targets.iter().map(|t| t.name.to_string()).collect(),
                    });
                }
                Some(op) => scoped.entry(op.as_str()).or_default().push(ov),
                None => global.push(ov),
            }
        }
        let declared = targets
            .iter()
            .flat_map(|t| t.parameters.iter().map(|p| p.key.as_str()))
            .collect();
        Ok(ConfigResolver {
            file: file.to_string(),
            targets,
            by_name,
            declared,
            global,
            scoped,
        })
    }

    /// The `(key, value)` pairs of operation `operation`, by the rules of
    /// [`resolve_configuration`].
    pub fn resolve(&self, operation: &str) -> Result<Vec<(String, String)>, ComposeError> {
        let target =
            self.by_name
                .get(operation)
                .map(|&i| &self.targets[i])
                .ok_or_else(|| ComposeError::UnknownOperation {
                    file: self.file.clone(),
                    operation: operation.to_string(),
                })?;

        let mut values: Vec<(String, Option<String>)> = target
            .parameters
            .iter()
            .map(|p| (p.key.clone(), p.default.clone()))
            .collect();
        // Where each key is first in `values`: the one an override sets.
        let mut position: HashMap<String, usize> = HashMap::with_capacity(values.len());
        for (i, (key, _)) in values.iter().enumerate() {
            position.entry(key.clone()).or_insert(i);
        }
        let mut set = |key: &str, value: &str| match position.get(key) {
            Some(&i) => values[i].1 = Some(value.to_string()),
            None => {
                position.insert(key.to_string(), values.len());
                values.push((key.to_string(), Some(value.to_string())));
            }
        };
        let declares: HashSet<&str> = target.parameters.iter().map(|p| p.key.as_str()).collect();
        for ov in &self.global {
            let applies = if self.declared.contains(ov.key.as_str()) {
                declares.contains(ov.key.as_str())
            } else {
                target.is_operator
            };
            if applies {
                set(&ov.key, &ov.value);
            }
        }
        for ov in self.scoped.get(operation).into_iter().flatten() {
            set(&ov.key, &ov.value);
        }

        let valued: HashSet<&str> = values
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.as_str())
            .collect();
        for p in target.parameters.iter().filter(|p| p.required) {
            if !valued.contains(p.key.as_str()) {
                return Err(ComposeError::RequiredParameter {
                    file: self.file.clone(),
                    operation: operation.to_string(),
                    key: p.key.clone(),
                });
            }
        }
        Ok(values.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }
}

/// The parameters to record in a composed artifact for one operation: the declared ones with
/// compose-time overrides baked into their defaults, plus undeclared keys those overrides added.
/// Running the artifact with no overrides then gives exactly the compose-time configuration.
pub(crate) fn bake_parameters(declared: &[Parameter], effective: &[(String, String)]) -> Vec<Parameter> {
    // The first value of each key, and the declared keys: lookups, not scans, per parameter.
    let mut first: HashMap<&str, &String> = HashMap::with_capacity(effective.len());
    for (k, v) in effective {
        first.entry(k.as_str()).or_insert(v);
    }
    let mut known: HashSet<String> = declared.iter().map(|p| p.key.clone()).collect();
    let mut out: Vec<Parameter> = declared
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(v) = first.get(p.key.as_str()) {
                p.default = Some((*v).clone());
            }
            p
        })
        .collect();
    for (k, v) in effective {
        if known.insert(k.clone()) {
            out.push(Parameter {
                key: k.clone(),
                description: None,
                required: false,
                default: Some(v.clone()),
            });
        }
    }
    out
}
