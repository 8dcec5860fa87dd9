//! Builds the Tcl package's shared library (`libcomm.so`, the cdylib of
//! crates/comm-pkg) so that `tclcomm` can carry it (`include_bytes!`).
//!
//! Why carry it: `cargo install` installs binaries only, so a library next
//! to the binary would need a second, manual step; carried inside, the
//! `tclcomm` that `cargo install --path crates/cli` gives lays out a working
//! package from any directory (`tclcomm tcl-package DIR`).
//!
//! Why a nested cargo: cargo cannot make a cdylib a dependency of a binary
//! (artifact dependencies are unstable), and the cdylib that cargo writes
//! next to the dependency's rlib does not exist under `cargo check` or
//! `cargo clippy`. The nested build uses its own target directory beside
//! the outer one (one target directory cannot be locked twice), the outer
//! profile, the cached sources (`--offline`: the outer build fetched every
//! crate comm-pkg needs, since the CLI also depends on it) and the outer
//! jobserver (CARGO_MAKEFLAGS), so it adds no parallelism of its own.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The library's file name, as comm-pkg's `LIBRARY_FILE`.
fn library_file() -> &'static str {
    match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") => "libcomm.dylib",
        Ok("windows") => "comm.dll",
        _ => "libcomm.so",
    }
}

/// The outer target directory: OUT_DIR is TARGET/PROFILE/build/NAME-HASH/out
/// (TARGET/TRIPLE/PROFILE/... when cross-compiling).
fn outer_target(out_dir: &Path) -> PathBuf {
    let mut dir = out_dir.to_path_buf();
    for _ in 0..4 {
        if !dir.pop() {
            break;
        }
    }
    dir
}

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    let pkg_dir = manifest.join("../comm-pkg");
    // Directories: cargo reruns this script when any file under them
    // changes; the nested cargo then decides what to rebuild.
    for dep in ["../comm-pkg", "../tcl", "../wire"] {
        println!("cargo:rerun-if-changed={}", manifest.join(dep).display());
    }
    println!("cargo:rerun-if-changed=../../Cargo.lock");
    println!("cargo:rerun-if-env-changed=TCLCOMM_EMBED_LIBRARY");

    // A prebuilt library (packagers, or a build without the nested cargo).
    if let Some(given) = env::var_os("TCLCOMM_EMBED_LIBRARY") {
        let given = PathBuf::from(given);
        assert!(
            given.is_file(),
            "TCLCOMM_EMBED_LIBRARY={} is not a file",
            given.display()
        );
        println!(
            "cargo:rustc-env=TCLCOMM_EMBEDDED_LIBRARY={}",
            given.display()
        );
        return;
    }

    let release = env::var("PROFILE").as_deref() == Ok("release");
    let target_dir = outer_target(&out_dir).join("tclcomm-embed");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--offline")
        .arg("--lib")
        .arg("--manifest-path")
        .arg(pkg_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if release {
        cmd.arg("--release");
    }
    if let Ok(target) = env::var("TARGET")
        && env::var("HOST").ok().as_deref() != Some(target.as_str())
    {
        cmd.arg("--target").arg(target);
    }
    // Under `cargo clippy` the outer build runs rustc through clippy-driver;
    // the library itself is linted by the workspace's own run.
    cmd.env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {}: {e}", library_file()));
    assert!(
        status.success(),
        "building {} (crates/comm-pkg) failed: {status}",
        library_file()
    );
    let mut built = target_dir.clone();
    if let Ok(target) = env::var("TARGET")
        && env::var("HOST").ok().as_deref() != Some(target.as_str())
    {
        built.push(target);
    }
    built.push(if release { "release" } else { "debug" });
    built.push(library_file());
    assert!(built.is_file(), "{} was not built", built.display());
    // Copied into OUT_DIR so that a later nested build (another profile
    // writes elsewhere, but the same profile rewrites the file) never
    // changes the bytes under a compilation that is reading them.
    let copy = out_dir.join(library_file());
    std::fs::copy(&built, &copy).unwrap_or_else(|e| panic!("cannot copy {}: {e}", built.display()));
    println!(
        "cargo:rustc-env=TCLCOMM_EMBEDDED_LIBRARY={}",
        copy.display()
    );
}
