//! Link options for the binary users install, and only for it.
//!
//! `cargo install` builds the `release` profile. There the linker folds functions whose machine
//! code and relocations are identical (`--icf=all`; many generic instances compile to the same
//! bytes) and packs the relative relocations of the position-independent binary
//! (`-z pack-relative-relocs`, DT_RELR: a bitmap instead of 24 bytes per pointer to patch). Both
//! only make the file smaller (BENCHMARKS.md, "Binary size").
//!
//! Folding gives distinct functions one address. Rust does not promise distinct addresses; the C
//! code linked in is librdkafka, which compares function pointers but is compiled with one
//! `.text` section per file (nothing to fold), and ring's primitives.
//!
//! Not for the other profiles: `dev` and `test` builds should link fast, and `cargo bench` keeps
//! unfolded code, so perf and callgrind name the right function. Cargo tells a build script no
//! profile name, only `PROFILE` (`release` for `release` and for `bench`, which inherits from it)
//! and `DEBUG`: `[profile.release]` has no debug info, `[profile.bench]` keeps line tables (root
//! `Cargo.toml`), and that tells the two apart.
//!
//! Both options are LLD's: rustc links with its own copy on x86_64 Linux since 1.90 (nothing to
//! install). For another target, or where the build picks its linker (`RUSTC_LINKER`, or a
//! `link…` flag in RUSTFLAGS), the options are left out; `WASMFLOW_PLAIN_LINK=1` leaves them out
//! on request. A DT_RELR binary needs glibc 2.36 or newer to start: the packing is left out when
//! the glibc built against (`ldd --version`) is older or cannot be told.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WASMFLOW_PLAIN_LINK");

    let var = |name: &str| env::var(name).unwrap_or_default();
    let installed_profile = var("PROFILE") == "release" && var("DEBUG") == "false";
    let rustc_lld = var("TARGET") == "x86_64-unknown-linux-gnu"
        && env::var_os("RUSTC_LINKER").is_none()
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("link");
    if !installed_profile || !rustc_lld || var("WASMFLOW_PLAIN_LINK") == "1" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the glibc on this machine is `major.minor` or newer, from the first line of
/// `ldd --version` ("ldd (Debian GLIBC 2.36-9+deb12u14) 2.36"); `false` when that cannot be told
/// (no `ldd`, another C library, another format).
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("ldd").arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(first) = text.lines().next() else {
        return false;
    };
    if !first.contains("GLIBC") && !first.contains("GNU libc") {
        return false;
    }
    let Some(version) = first.split_whitespace().last() else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b) >= (major, minor),
        _ => false,
    }
}
