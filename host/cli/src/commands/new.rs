use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use wasmflow_scaffold::{create, Kind, Language, OperatorName, Request, Toolkit};

#[derive(Args, Debug)]
pub struct NewCmd {
    /// The operator's name: the project folder, the package and NAME.wasm (lowercase letters,
    /// digits, `-`, `_`).
    #[arg(value_parser = |s: &str| OperatorName::parse(s))]
    pub name: OperatorName,
    /// The operator kind: map, filter, branch, accumulate or delay.
    #[arg(long, value_parser = |s: &str| s.parse::<Kind>())]
    pub kind: Kind,
    /// A Python operator (componentize-py) instead of Rust on the SDK.
    #[arg(long)]
    pub python: bool,
    /// The folder to create the project in.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

impl NewCmd {
    pub fn execute(self) -> Result<ExitCode> {
        let request = Request {
            name: self.name,
            kind: self.kind,
            language: if self.python { Language::Python } else { Language::Rust },
        };
        let project = create(&self.dir, &request, &Toolkit::this_checkout())?;
        println!("created {} ({} files)", project.dir.display(), project.files.len());
        println!("  cd {}", project.dir.display());
        println!("  {:<45} # unit tests of the logic", project.unit_test);
        println!("  {:<45} # {}.wasm", project.build, request.name);
        println!("  {:<45} # the generated graph test", project.golden_test);
        Ok(ExitCode::SUCCESS)
    }
}
