//! Registry transfers drawn as progress bars on standard error (the OCI library reports them
//! through its `Progress` trait and draws nothing itself).

use wasmflow_oci::{Progress, Transfer};

/// Draws each reported transfer as an indicatif bar.
pub struct Bars;

impl Progress for Bars {
    fn start(&self, verb: &str, what: &str, len: u64) -> Box<dyn Transfer> {
        let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{verb} {what}"));
        Box::new(Bar(bar))
    }
}

struct Bar(indicatif::ProgressBar);

impl Transfer for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
