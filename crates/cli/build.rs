//! Builds the Tcl package's shared library (`libcomm.so`, the cdylib of
//! crates/comm-pkg) so that `tclcomm` can carry it (`include_bytes!`), and
//! its Tcl 9 build (`libtcl9comm.so`, feature `tcl9`) too when Tcl 9's stub
//! library can be found (`TCL9_LIB_DIR`, `TCL9_PREFIX` as unpacked by
//! ../shared/tools/tcl9-env, or pkg-config `tcl9.0`; see crates/tcl/build.rs).
//! Without it the binary carries the 8.6 library only, and says so.
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
    println!("cargo:rerun-if-env-changed=TCLCOMM_EMBED_LIBRARY_TCL9");
    println!("cargo:rerun-if-env-changed=TCL9_PREFIX");
    println!("cargo:rerun-if-env-changed=TCL9_LIB_DIR");
    println!("cargo::rustc-check-cfg=cfg(tclcomm_embed_tcl9)");

    // The Tcl 9 library: prebuilt, or built below when Tcl 9 is there.
    if let Some(given) = given_library("TCLCOMM_EMBED_LIBRARY_TCL9") {
        embed_tcl9(&given);
    } else if tcl9_available() {
        let built = build_library(&pkg_dir, &out_dir, true);
        let copy = out_dir.join("tcl9").join(library_file());
        std::fs::create_dir_all(out_dir.join("tcl9")).expect("OUT_DIR/tcl9");
        std::fs::copy(&built, &copy)
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", built.display()));
        embed_tcl9(&copy);
    }

    // A prebuilt library (packagers, or a build without the nested cargo).
    if let Some(given) = given_library("TCLCOMM_EMBED_LIBRARY") {
        println!(
            "cargo:rustc-env=TCLCOMM_EMBEDDED_LIBRARY={}",
            given.display()
        );
        return;
    }

    let built = build_library(&pkg_dir, &out_dir, false);
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

/// Whether Tcl 9's stub library can be found, as crates/tcl/build.rs looks.
fn tcl9_available() -> bool {
    let stub = "libtclstub9.0.a";
    if let Some(d) = env::var_os("TCL9_LIB_DIR") {
        return Path::new(&d).join(stub).is_file();
    }
    if let Some(p) = env::var_os("TCL9_PREFIX") {
        let multiarch = format!(
            "{}-linux-gnu",
            env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into())
        );
        let p = PathBuf::from(p);
        return [
            p.join("usr/lib").join(multiarch),
            p.join("usr/lib"),
            p.join("lib"),
        ]
        .iter()
        .any(|d| d.join(stub).is_file());
    }
    Command::new("pkg-config")
        .args(["--variable=libdir", "tcl9.0"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|d| Path::new(d.trim()).join(stub).is_file())
}

/// Tells the CLI to carry `lib` as the Tcl 9 library.
fn embed_tcl9(lib: &Path) {
    println!("cargo:rustc-cfg=tclcomm_embed_tcl9");
    println!(
        "cargo:rustc-env=TCLCOMM_EMBEDDED_LIBRARY_TCL9={}",
        lib.display()
    );
}

/// Builds crates/comm-pkg's cdylib with a nested cargo (for Tcl 9 with
/// feature `tcl9`, in a target directory of its own: the file has the same
/// name) and returns where it is.
fn build_library(pkg_dir: &Path, out_dir: &Path, tcl9: bool) -> PathBuf {
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let target_dir = outer_target(out_dir).join(if tcl9 {
        "tclcomm-embed-tcl9"
    } else {
        "tclcomm-embed"
    });
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
    if tcl9 {
        cmd.args(["--features", "tcl9"]);
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
    built
}

/// A prebuilt library named by the environment variable `var`, which must
/// be a file when it is set.
fn given_library(var: &str) -> Option<PathBuf> {
    let given = PathBuf::from(env::var_os(var)?);
    assert!(given.is_file(), "{var}={} is not a file", given.display());
    Some(given)
}
