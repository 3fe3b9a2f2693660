//! The `schema-registry` interface: the schemas a graph definition carries (`schemas`), looked
//! up by name.

use wasmflow_compose::Manifest;

pub mod host;

/// One schema as the registry answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The name modules ask for.
    pub name: String,
    /// Its content type (the definition's `format`).
    pub content_type: String,
    /// The schema text.
    pub content: String,
}

/// The schemas of one graph.
#[derive(Debug, Clone, Default)]
pub struct Schemas(Vec<Schema>);

impl Schemas {
    /// The schemas of a graph's manifest.
    pub fn from_manifest(manifest: &Manifest) -> Self {
        Self(
            manifest
                .schemas
                .iter()
                .map(|s| Schema {
                    name: s.name.clone(),
                    content_type: s.format.clone(),
                    content: s.content.clone(),
                })
                .collect(),
        )
    }

    /// The schema named `name`, if the graph has one (a later one of the same name wins:
    /// schemas given at run time replace the definition's).
    pub fn get(&self, name: &str) -> Option<&Schema> {
        self.0.iter().rev().find(|s| s.name == name)
    }

    /// Adds schemas given at run time (`--schema`, a test scenario's schema file).
    pub fn extend(&mut self, more: impl IntoIterator<Item = Schema>) {
        self.0.extend(more);
    }

    /// Every schema, once per name, in the order given: what each module's `init` receives
    /// as `module-schemas`.
    pub fn all(&self) -> Vec<&Schema> {
        let mut out: Vec<&Schema> = Vec::new();
        for s in &self.0 {
            match out.iter_mut().find(|o| o.name == s.name) {
                Some(o) => *o = s,
                None => out.push(s),
            }
        }
        out
    }

    /// Reads `NAME=FILE` (`--schema`): the file must be JSON, and its text is the content.
    pub fn parse_spec(spec: &str) -> Result<Schema, String> {
        let (name, file) = spec
            .split_once('=')
            .filter(|(n, f)| !n.is_empty() && !f.is_empty())
            .ok_or_else(|| format!("--schema `{spec}`: expected NAME=FILE"))?;
        let content = std::fs::read_to_string(file).map_err(|e| format!("--schema {name}={file}: {e}"))?;
        serde_json::from_str::<serde_json::Value>(&content)
            .map_err(|e| format!("--schema {name}={file}: not JSON: {e}"))?;
        Ok(Schema {
            name: name.to_owned(),
            content_type: JSON_SCHEMA.to_owned(),
            content,
        })
    }
}

/// The content type of a schema given as a JSON file.
pub const JSON_SCHEMA: &str = "application/schema+json";

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str, content: &str) -> Schema {
        Schema {
            name: name.into(),
            content_type: JSON_SCHEMA.into(),
            content: content.into(),
        }
    }

    #[test]
    fn run_time_schemas_replace_the_definitions_of_the_same_name() {
        let mut s = Schemas::default();
        s.extend([schema("a", "1"), schema("b", "2")]);
        s.extend([schema("a", "3")]);
        assert_eq!(s.get("a").map(|s| s.content.as_str()), Some("3"));
        let all: Vec<(&str, &str)> = s.all().iter().map(|s| (s.name.as_str(), s.content.as_str())).collect();
        assert_eq!(all, vec![("a", "3"), ("b", "2")]);
        assert!(s.get("c").is_none());
    }

    #[test]
    fn a_schema_file_must_be_json() {
        let dir = std::env::temp_dir().join(format!("wasmflow-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        let bad = dir.join("bad.json");
        std::fs::write(&good, r#"{"type":"object"}"#).unwrap();
        std::fs::write(&bad, "type: object").unwrap();
        let s = Schemas::parse_spec(&format!("t={}", good.display())).unwrap();
        assert_eq!((s.name.as_str(), s.content.as_str()), ("t", r#"{"type":"object"}"#));
        let e = Schemas::parse_spec(&format!("t={}", bad.display())).unwrap_err();
        assert!(e.contains("not JSON") && e.contains("bad.json"), "{e}");
        assert!(Schemas::parse_spec("nofile").unwrap_err().contains("NAME=FILE"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
