//! The files a platform scenario folder carries next to its graph and data: `statestore.json`
//! (the state the graph expects to find), `hostapp.env.list` (the local host's environment, in
//! Docker's env-file form) and the JSON schema that `TK_SCHEMA_CONFIG_PATH` in it names.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{invalid, read_text, GoldenError, Result};

/// The state-store seed file a scenario folder carries.
pub const STATESTORE_FILE: &str = "statestore.json";
/// The local host's environment file a scenario folder may carry.
pub const ENV_LIST_FILE: &str = "hostapp.env.list";
/// The variable in [`ENV_LIST_FILE`] naming the schema handed to modules at `init`.
pub const SCHEMA_VAR: &str = "TK_SCHEMA_CONFIG_PATH";
/// The schema file the platform's tooling names in a generated [`ENV_LIST_FILE`] when a scenario
/// has none, so a scenario with this file and no env list still gets its schema.
pub const DEFAULT_SCHEMA_FILE: &str = "tk_schema_config.json";
/// The content type given to a schema read from a file: the files are JSON Schema documents.
pub const SCHEMA_CONTENT_TYPE: &str = "application/schema+json";

/// A schema for the `module-schemas` of a module's `init` configuration (the WIT record
/// `module-schema` in `wit/processor/types.wit`): the platform's local host reads it from the
/// file `TK_SCHEMA_CONFIG_PATH` names and hands it to every module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The schema's name: its file name (`tk_schema_config.json`).
    pub name: String,
    /// Always [`SCHEMA_CONTENT_TYPE`] for a file.
    pub content_type: String,
    /// The file's text, unchanged (checked to be JSON).
    pub content: String,
    /// Where it was read from, for messages.
    pub path: PathBuf,
}

/// Reads a state-store seed in either of the two forms in use, as `(key, value)` pairs in file
/// order:
///
/// - the platform's `statestore.json`: an array of objects, each `{"key": "value"}` (one pair
///   per object as published; an object with several pairs gives all of them);
/// - wasmflow's seed (`state:` in a descriptor, as `seed_from_json` of the runtime's state store
///   reads it): one object of keys to values.
///
/// A string value is stored as its UTF-8 bytes, any other value as its compact JSON text (the
/// same rule as wasmflow's seed). A later pair for the same key replaces an earlier one when the
/// pairs are set in order. Errors name the file and the element that is wrong.
pub fn parse_state_seed(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let text = read_text(path, "state-store seed ")?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| invalid(path, format!("state-store seed is not JSON: {e}")))?;
    let bytes = |v: &Value| match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    };
    let pairs = |o: &serde_json::Map<String, Value>| {
        o.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), bytes(v)))
            .collect::<Vec<_>>()
    };
    match &v {
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(o) => out.extend(pairs(o)),
                    other => {
                        return Err(invalid(
                            path,
                            format!(
                                "element {i} is {}; the platform's state-store seed is an array of {{\"key\": \"value\"}} objects",
                                kind(other)
                            ),
                        ))
                    }
                }
            }
            Ok(out)
        }
        Value::Object(o) => Ok(pairs(o)),
        other => Err(invalid(
            path,
            format!(
                "state-store seed is {}; expected the platform's form, an array of {{\"key\": \"value\"}} objects, or wasmflow's {{\"key\": \"value\", …}} object",
                kind(other)
            ),
        )),
    }
}

/// Reads an env list in Docker's env-file form, as the platform's local host takes it: one
/// `KEY=VALUE` a line, the value verbatim up to the end of the line (quotes are kept, as Docker
/// keeps them), blank lines and lines starting with `#` skipped. A line without `=` passes a
/// variable through from the caller's environment in Docker; golden tests do not read the
/// environment, so such a line is skipped. Errors name the file and the line.
pub fn parse_env_list(path: &Path) -> Result<Vec<(String, String)>> {
    let text = read_text(path, "")?;
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r').trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim_end();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(GoldenError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                problem: format!("`{key}` is not a variable name (lines are KEY=VALUE)"),
            });
        }
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

/// Reads a schema file for [`Schema`]; it must be JSON (the platform's local host loads JSON
/// Schema draft-07). `named_by` says where the path came from, for the error.
pub fn load_schema(path: &Path, named_by: &str) -> Result<Schema> {
    let content = read_text(path, "schema ")?;
    serde_json::from_str::<Value>(&content)
        .map_err(|e| invalid(path, format!("the schema ({named_by}) is not JSON: {e}")))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(Schema {
        name,
        content_type: SCHEMA_CONTENT_TYPE.into(),
        content,
        path: path.to_path_buf(),
    })
}

/// What the scenario folders of a test provide.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    pub state: Option<PathBuf>,
    pub env_file: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub schemas: Vec<Schema>,
}

/// Looks in each scenario folder, in order (the graph's folder, then the input folder's parent),
/// and takes the first `statestore.json`, the first `hostapp.env.list` and the schema it names
/// (or, with no env list anywhere, the first `tk_schema_config.json`).
pub(crate) fn find(dirs: &[PathBuf]) -> Result<Extras> {
    let first = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    let mut x = Extras {
        state: first(STATESTORE_FILE),
        ..Default::default()
    };
    if let Some(env_file) = first(ENV_LIST_FILE) {
        x.env = parse_env_list(&env_file)?;
        if let Some((_, rel)) = x.env.iter().rev().find(|(k, _)| k == SCHEMA_VAR) {
            if rel.trim().is_empty() {
                return Err(invalid(&env_file, format!("{SCHEMA_VAR} is empty")));
            }
            let base = env_file.parent().unwrap_or(Path::new("."));
            let path = base.join(rel.trim());
            let named_by = format!("{SCHEMA_VAR} in {}", env_file.display());
            if !path.is_file() {
                return Err(invalid(
                    &env_file,
                    format!("{SCHEMA_VAR}={rel}: no such file {}", path.display()),
                ));
            }
            x.schemas.push(load_schema(&path, &named_by)?);
        }
        x.env_file = Some(env_file);
    } else if let Some(path) = first(DEFAULT_SCHEMA_FILE) {
        x.schemas
            .push(load_schema(&path, "found in the scenario folder, no hostapp.env.list")?);
    }
    Ok(x)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_platform_seed_is_an_array_of_single_pair_objects() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "statestore.json",
            r#"[{"factoryId": "factoryA"}, {"machineId": "machineA"}, {"n": 3}]"#,
        );
        assert_eq!(
            parse_state_seed(&p).unwrap(),
            vec![
                (b"factoryId".to_vec(), b"factoryA".to_vec()),
                (b"machineId".to_vec(), b"machineA".to_vec()),
                (b"n".to_vec(), b"3".to_vec()),
            ]
        );
    }

    #[test]
    fn wasmflow_seed_objects_still_read() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "seed.json", r#"{"overtemp": "true", "limit": {"max": 5}}"#);
        assert_eq!(
            parse_state_seed(&p).unwrap(),
            vec![
                (b"overtemp".to_vec(), b"true".to_vec()),
                (b"limit".to_vec(), br#"{"max":5}"#.to_vec()),
            ]
        );
    }

    #[test]
    fn a_seed_in_neither_form_is_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "statestore.json", r#"[{"a": "1"}, "b"]"#);
        let e = parse_state_seed(&p).unwrap_err().to_string();
        assert!(e.contains("statestore.json: element 1 is a string"), "{e}");
        let p = write(d.path(), "statestore.json", "42");
        let e = parse_state_seed(&p).unwrap_err().to_string();
        assert!(e.contains("statestore.json: state-store seed is a number"), "{e}");
        let p = write(d.path(), "statestore.json", "[{");
        let e = parse_state_seed(&p).unwrap_err().to_string();
        assert!(e.contains("statestore.json: state-store seed is not JSON"), "{e}");
    }

    #[test]
    fn env_lists_are_docker_env_files() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "hostapp.env.list",
            "# schema\nTK_SCHEMA_CONFIG_PATH=tk_schema_config.json\r\n\n  PASSED_THROUGH\nQUOTED=\"a=b\"\n",
        );
        assert_eq!(
            parse_env_list(&p).unwrap(),
            vec![
                ("TK_SCHEMA_CONFIG_PATH".into(), "tk_schema_config.json".into()),
                ("QUOTED".into(), "\"a=b\"".into()),
            ]
        );
        let p = write(d.path(), "bad.env.list", "OK=1\n=2\n");
        let e = parse_env_list(&p).unwrap_err().to_string();
        assert!(e.contains("bad.env.list:2:"), "{e}");
    }

    #[test]
    fn the_env_list_names_the_schema_relative_to_itself() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("schemas")).unwrap();
        write(d.path(), "hostapp.env.list", "TK_SCHEMA_CONFIG_PATH=schemas/s.json\n");
        write(&d.path().join("schemas"), "s.json", r#"{"type": "object"}"#);
        let x = find(&[d.path().join("missing"), d.path().to_path_buf()]).unwrap();
        assert_eq!(x.env_file.as_deref(), Some(d.path().join("hostapp.env.list").as_path()));
        assert_eq!(x.schemas.len(), 1);
        assert_eq!(x.schemas[0].name, "s.json");
        assert_eq!(x.schemas[0].content_type, SCHEMA_CONTENT_TYPE);
        assert_eq!(x.schemas[0].content, r#"{"type": "object"}"#);
        assert!(x.state.is_none());
    }

    #[test]
    fn a_schema_that_is_not_json_or_not_there_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "hostapp.env.list",
            "TK_SCHEMA_CONFIG_PATH=tk_schema_config.json\n",
        );
        let e = find(&[d.path().to_path_buf()]).unwrap_err().to_string();
        assert!(
            e.contains("hostapp.env.list: TK_SCHEMA_CONFIG_PATH=tk_schema_config.json: no such file"),
            "{e}"
        );
        write(d.path(), "tk_schema_config.json", "type: object\n");
        let e = find(&[d.path().to_path_buf()]).unwrap_err().to_string();
        assert!(
            e.contains("tk_schema_config.json: the schema (TK_SCHEMA_CONFIG_PATH in"),
            "{e}"
        );
        assert!(e.contains("is not JSON"), "{e}");
    }

    #[test]
    fn without_an_env_list_the_default_schema_file_is_used() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "tk_schema_config.json", "{}");
        write(d.path(), "statestore.json", "[]");
        let x = find(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(x.schemas.len(), 1);
        assert!(x.env_file.is_none());
        assert_eq!(x.state.as_deref(), Some(d.path().join("statestore.json").as_path()));
    }
}
