//! The one rule for secrets (broker passwords, SASL credentials, tokens): they come from the
//! environment or a file, never from the command line, where `ps` and shell history show them.
//!
//! A setting whose value may be secret is written `env:NAME` (read from the environment
//! variable `NAME`) or `file:PATH` (read from the file, trailing newline removed); anything
//! else is taken as written. A flag that names only a secret (`--mqtt-password-file`) reads its
//! file, else a fixed environment variable.

use std::path::{Path, PathBuf};

/// A secret that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// `env:NAME` named a variable that is not set.
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    /// `file:PATH` (or a secret file flag) could not be read.
    #[error("reading the secret file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
}

/// Where a setting's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `env:NAME`.
    Env(String),
    /// `file:PATH`.
    File(PathBuf),
    /// Anything else: the value as written.
    Literal(String),
}

impl Value {
    /// Reads `env:NAME` / `file:PATH` / a literal.
    pub fn parse(text: &str) -> Self {
        if let Some(var) = text.strip_prefix("env:") {
            Value::Env(var.to_owned())
        } else if let Some(path) = text.strip_prefix("file:") {
            Value::File(path.into())
        } else {
            Value::Literal(text.to_owned())
        }
    }

    /// The value itself.
    pub fn read(&self) -> Result<String, SecretError> {
        match self {
            Value::Env(var) => std::env::var(var).map_err(|_| SecretError::Unset(var.clone())),
            Value::File(path) => read_file(path),
            Value::Literal(v) => Ok(v.clone()),
        }
    }
}

/// A secret from `file` when given, else from the environment variable `env` (`None` when
/// neither is there: the secret is optional).
pub fn from_file_or_env(file: Option<&Path>, env: &str) -> Result<Option<String>, SecretError> {
    match file {
        Some(f) => read_file(f).map(Some),
        None => Ok(std::env::var(env).ok()),
    }
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| SecretError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_from_the_environment_a_file_or_as_written() {
        let dir = std::env::temp_dir().join(format!("wasmflow-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(
            Value::parse(&format!("file:{}", file.display())).read().unwrap(),
            "s3cret"
        );
        assert_eq!(Value::parse("plain").read().unwrap(), "plain");
        assert_eq!(
            Value::parse("env:WASMFLOW_SURELY_UNSET_VARIABLE").read(),
            Err(SecretError::Unset("WASMFLOW_SURELY_UNSET_VARIABLE".into()))
        );
        assert_eq!(
            from_file_or_env(Some(&file), "UNUSED").unwrap().as_deref(),
            Some("s3cret")
        );
        assert!(matches!(
            from_file_or_env(Some(&dir.join("missing")), "UNUSED"),
            Err(SecretError::File { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
