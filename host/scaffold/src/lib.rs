//! Operator projects for `wasmflow new NAME --kind KIND [--python]`.
//!
//! [`create`] writes a folder `NAME/` that builds one operator of the chosen kind and tests it:
//!
//! * **Rust** ([`Language::Rust`]): a `cdylib` crate written on the open SDK (`wasm_graph_sdk`,
//!   `components/sdk`), naming it as the platform's operators do (`registry = "aio-wg"`), with the
//!   one documented step that finds it: a `.cargo/config.toml` that patches it to this checkout's
//!   SDK and replaces the platform's registry by an empty directory. `build.sh` builds it with the
//!   repository's toolchain recipe (`scripts/wasm-toolchain.sh`); `cargo test` runs the unit tests
//!   of its logic natively.
//! * **Python** ([`Language::Python`]): one module in the platform's style (the `<kind>_impl`
//!   bindings, a class `Map(exports.Map)`, …), built by `build.sh` with componentize-py against
//!   this checkout's `wit/processor` (the worlds `map-impl` … `delay-impl`); `python3 -m
//!   unittest` runs its unit tests natively on the generated bindings.
//!
//! Either way the project holds `graph.yaml` (source → the operator → sink) and a golden test in
//! the platform's format, `tests/NAME/` (descriptor, `input/`, `expected/expected.json`), which
//! `wasmflow test tests` runs against the built `NAME.wasm`, so a new project passes its own test
//! before it is changed.
//!
//! Nothing is overwritten: the folder must not exist, and a project that cannot be written
//! completely is removed again.

#![warn(missing_docs)]

mod templates;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Why a project was not created. Each message is one sentence naming the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The operator name cannot name a crate, a Python module and a file.
    #[error("operator name `{name}` is not usable: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The kind is not one of the five operator kinds.
    #[error("unknown operator kind `{0}`: expected one of map, filter, branch, accumulate, delay")]
    UnknownKind(String),
    /// The project folder exists already.
    #[error("{} already exists: wasmflow new never overwrites, so choose another name or --dir", .0.display())]
    Exists(PathBuf),
    /// This checkout lacks a file the project refers to.
    #[error("{what} is missing at {} (the project would refer to it): is this a complete wasmflow checkout?", .path.display())]
    MissingToolkit {
        /// What the file is (`the SDK`, `the operator WIT`, …).
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },
    /// Writing a file failed.
    #[error("writing {}: {error}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error (part of the message, not a `source`: printed once).
        error: std::io::Error,
    },
}

/// The five operator kinds of `wasm-graph:processor@1.1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One item in, one item out.
    Map,
    /// Passes or drops an item.
    Filter,
    /// Routes an item to arm `True` or `False`.
    Branch,
    /// Folds the items that share a timestamp into a staged value.
    Accumulate,
    /// Moves an item later in event time.
    Delay,
}

impl Kind {
    /// Every kind, in the order the WIT declares them.
    pub const ALL: [Kind; 5] = [Kind::Map, Kind::Filter, Kind::Branch, Kind::Accumulate, Kind::Delay];

    /// The interface name: `map`, `filter`, …
    pub fn name(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::Filter => "filter",
            Kind::Branch => "branch",
            Kind::Accumulate => "accumulate",
            Kind::Delay => "delay",
        }
    }

    /// The world an operator of this kind implements: `map-impl`, …
    pub fn world(self) -> String {
        format!("{}-impl", self.name())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = ScaffoldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ScaffoldError::UnknownKind(s.to_string()))
    }
}

/// The language of the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A crate on the open SDK.
    Rust,
    /// A componentize-py module.
    Python,
}

/// An operator name that is usable as a folder, a crate, a Python module and a module file:
/// lowercase ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorName(String);

impl OperatorName {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<Self, ScaffoldError> {
        let bad = |reason| ScaffoldError::BadName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() || name.len() > 64 {
            return Err(bad("it must have 1 to 64 characters"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(bad("it must start with a lowercase letter"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(bad("only lowercase letters, digits, `-` and `_` may follow"));
        }
        Ok(Self(name.to_string()))
    }

    /// The name as given: the folder, the package and `NAME.wasm`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a Rust or Python identifier (`-` becomes `_`): the library file
    /// (`target/…/NAME.wasm` is named after it), the Python module and the operator function.
    pub fn identifier(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The files of this wasmflow checkout that a generated project refers to by absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolkit {
    /// The SDK crate (`components/sdk`).
    pub sdk: PathBuf,
    /// The operator WIT with the worlds `map-impl` … `delay-impl` (`wit/processor`).
    pub wit: PathBuf,
    /// The wasm32-wasip2 toolchain recipe (`scripts/wasm-toolchain.sh`).
    pub toolchain: PathBuf,
}

impl Toolkit {
    /// The toolkit of the checkout at `repo`.
    pub fn at(repo: &Path) -> Self {
        Self {
            sdk: repo.join("components/sdk"),
            wit: repo.join("wit/processor"),
            toolchain: repo.join("scripts/wasm-toolchain.sh"),
        }
    }

    /// The toolkit of the checkout this crate was built from (`host/scaffold` is two levels
    /// below its root), as `wasmflow` finds its default modules directory.
    pub fn this_checkout() -> Self {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        Self::at(crate_dir.ancestors().nth(2).unwrap_or(crate_dir))
    }

    /// Checks that the files a project of `language` refers to exist.
    fn check(&self, language: Language) -> Result<(), ScaffoldError> {
        let needed: &[(&'static str, &Path)] = match language {
            Language::Rust => &[
                ("the SDK (components/sdk/Cargo.toml)", &self.sdk.join("Cargo.toml")),
                ("the toolchain recipe (scripts/wasm-toolchain.sh)", &self.toolchain),
            ],
            Language::Python => &[(
                "the operator WIT (wit/processor/operators.wit)",
                &self.wit.join("operators.wit"),
            )],
        };
        for (what, path) in needed {
            if !path.is_file() {
                return Err(ScaffoldError::MissingToolkit {
                    what,
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operator's name (the folder, the package, `NAME.wasm`).
    pub name: OperatorName,
    /// Its kind.
    pub kind: Kind,
    /// Its language.
    pub language: Language,
}

/// A created project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// Every file written, relative to [`Project::dir`], in the order written.
    pub files: Vec<PathBuf>,
    /// The command that builds `NAME.wasm` (run in [`Project::dir`]).
    pub build: &'static str,
    /// The command that runs the unit tests (run in [`Project::dir`]).
    pub unit_test: &'static str,
    /// The command that runs the golden test once built (run in [`Project::dir`]).
    pub golden_test: &'static str,
}

/// Creates the project folder `parent/NAME` for `request`, its files referring to `toolkit`.
pub fn create(parent: &Path, request: &Request, toolkit: &Toolkit) -> Result<Project, ScaffoldError> {
    toolkit.check(request.language)?;
    let dir = parent.join(request.name.as_str());
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let files = templates::render(request, toolkit);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ScaffoldError::Io { path, error }
    };
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    // `create_dir`, not `_all`: a folder made meanwhile by someone else is not ours to fill.
    std::fs::create_dir(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => ScaffoldError::Exists(dir.clone()),
        _ => ScaffoldError::Io {
            path: dir.clone(),
            error: e,
        },
    })?;
    let written = write_all(&dir, &files);
    if let Err(e) = written {
        // The folder is ours (it did not exist): leave nothing half-made behind.
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let (build, unit_test) = match request.language {
        Language::Rust => ("./build.sh", "cargo test"),
        Language::Python => ("./build.sh", "./build.sh bindings && python3 -m unittest"),
    };
    Ok(Project {
        dir,
        files: files.into_iter().map(|f| f.path).collect(),
        build,
        unit_test,
        golden_test: "wasmflow test tests",
    })
}

fn write_all(dir: &Path, files: &[templates::File]) -> Result<(), ScaffoldError> {
    for file in files {
        let path = dir.join(&file.path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| ScaffoldError::Io {
                path: folder.to_path_buf(),
                error,
            })?;
        }
        std::fs::write(&path, &file.contents).map_err(|error| ScaffoldError::Io {
            path: path.clone(),
            error,
        })?;
        #[cfg(unix)]
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(|error| {
                ScaffoldError::Io {
                    path: path.clone(),
                    error,
                }
            })?;
        }
    }
    Ok(())
}
