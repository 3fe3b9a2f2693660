//! Operation parameters and run-time overrides: what each operation's `init` receives.
//!
//! A parameter's value is its `default` from the graph, overridden by values given with
//! `-c key=value` (global) or `-c operation.key=value` (one operation). The same rules run at
//! compose time (`ValidatedGraph::configuration_for`) and at run time
//! (`Manifest::configuration_for`), so a composed artifact behaves like its YAML.

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
    let targets: Vec<ConfigTarget<'a>> = targets.into_iter().collect();
    for ov in overrides {
        if let Some(op) = &ov.operation {
            if !targets.iter().any(|t| t.name == op) {
                return Err(ComposeError::UnknownOverrideOperation {
                    file: file.to_string(),
                    input: ov.to_string(),
                    operation: op.clone(),
                    known: targets.iter().map(|t| t.name.to_string()).collect(),
                });
            }
        }
    }
    let target = targets
        .iter()
        .find(|t| t.name == operation)
        .ok_or_else(|| ComposeError::UnknownOperation {
            file: file.to_string(),
            operation: operation.to_string(),
        })?;

    let mut values: Vec<(String, Option<String>)> = target
        .parameters
        .iter()
        .map(|p| (p.key.clone(), p.default.clone()))
        .collect();
    let mut set = |key: &str, value: &str| match values.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = Some(value.to_string()),
        None => values.push((key.to_string(), Some(value.to_string()))),
    };
    for ov in overrides.iter().filter(|o| o.operation.is_none()) {
        let declares = |t: &ConfigTarget<'_>| t.parameters.iter().any(|p| p.key == ov.key);
        let applies = if targets.iter().any(declares) {
            declares(target)
        } else {
            target.is_operator
        };
        if applies {
            set(&ov.key, &ov.value);
        }
    }
    for ov in overrides.iter().filter(|o| o.operation.as_deref() == Some(operation)) {
        set(&ov.key, &ov.value);
    }

    for p in target.parameters.iter().filter(|p| p.required) {
        if !values.iter().any(|(k, v)| *k == p.key && v.is_some()) {
            return Err(ComposeError::RequiredParameter {
                file: file.to_string(),
                operation: operation.to_string(),
                key: p.key.clone(),
            });
        }
    }
    Ok(values.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
}

/// The parameters to record in a composed artifact for one operation: the declared ones with
/// compose-time overrides baked into their defaults, plus undeclared keys those overrides added.
/// Running the artifact with no overrides then gives exactly the compose-time configuration.
pub(crate) fn bake_parameters(declared: &[Parameter], effective: &[(String, String)]) -> Vec<Parameter> {
    let mut out: Vec<Parameter> = declared
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some((_, v)) = effective.iter().find(|(k, _)| *k == p.key) {
                p.default = Some(v.clone());
            }
            p
        })
        .collect();
    for (k, v) in effective {
        if !out.iter().any(|p| p.key == *k) {
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
