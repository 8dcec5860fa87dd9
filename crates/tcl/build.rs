//! Links the Tcl stub library (always) and libtcl (feature `embed`).
//! No bindgen, no C compiler: the declarations are hand-written in `src/sys.rs`.
//!
//! Tcl 8.6 (default): `libtclstub8.6.a` from `$TCL_LIB_DIR`, pkg-config or
//! the system's library directory. Tcl 9.0 (feature `tcl9`): Tcl 9 is
//! usually not the system's Tcl, so `libtclstub9.0.a` comes from
//! `$TCL9_LIB_DIR`, else `$TCL9_PREFIX/usr/lib/<multiarch>` (the layout that
//! `../shared/tools/tcl9-env PREFIX` unpacks), else `$TCL9_PREFIX/lib`, else
//! pkg-config `tcl9.0`; a build without it fails with a message saying so.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn pkg_config_var(var: &str, pkg: &str) -> Option<String> {
    let out = Command::new("pkg-config")
        .arg(format!("--variable={var}"))
        .arg(pkg)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// The directory holding `libtclstub9.0.a`.
fn tcl9_lib_dir() -> String {
    let stub = "libtclstub9.0.a";
    if let Ok(dir) = env::var("TCL9_LIB_DIR") {
        assert!(
            Path::new(&dir).join(stub).is_file(),
            "TCL9_LIB_DIR={dir} has no {stub}"
        );
        return dir;
    }
    let mut tried = Vec::new();
    if let Ok(prefix) = env::var("TCL9_PREFIX") {
        let multiarch = format!(
            "{}-linux-gnu",
            env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into())
        );
        for d in [
            PathBuf::from(&prefix).join("usr/lib").join(&multiarch),
            PathBuf::from(&prefix).join("usr/lib"),
            PathBuf::from(&prefix).join("lib"),
        ] {
            if d.join(stub).is_file() {
                return d.display().to_string();
            }
            tried.push(d.display().to_string());
        }
    }
    if let Some(d) = pkg_config_var("libdir", "tcl9.0")
        && Path::new(&d).join(stub).is_file()
    {
        return d;
    }
    panic!(
        "feature tcl9: {stub} not found (tried {}); set TCL9_PREFIX to a directory \
         unpacked by ../shared/tools/tcl9-env, or TCL9_LIB_DIR to the directory holding it",
        if tried.is_empty() {
            "no TCL9_PREFIX, pkg-config tcl9.0".to_string()
        } else {
            tried.join(", ")
        }
    );
}

fn main() {
    println!("cargo:rerun-if-env-changed=TCL_LIB_DIR");
    println!("cargo:rerun-if-env-changed=TCL_VERSION");
    println!("cargo:rerun-if-env-changed=TCL9_LIB_DIR");
    println!("cargo:rerun-if-env-changed=TCL9_PREFIX");
    let tcl9 = env::var_os("CARGO_FEATURE_TCL9").is_some();
    let embed = env::var_os("CARGO_FEATURE_EMBED").is_some();
    if tcl9 {
        // Embedding is for `tclcomm serve` and the tests, which run on the
        // system's Tcl 8.6; Tcl 9 is reached through tclsh9.0 and `load`.
        assert!(!embed, "features tcl9 and embed cannot be combined");
        let libdir = tcl9_lib_dir();
        println!("cargo:rustc-link-search=native={libdir}");
        println!("cargo:rustc-link-lib=static=tclstub9.0");
        return;
    }
    let ver = env::var("TCL_VERSION").unwrap_or_else(|_| "8.6".into());
    let libdir = env::var("TCL_LIB_DIR")
        .ok()
        .or_else(|| pkg_config_var("libdir", &format!("tcl{ver}")))
        .or_else(|| pkg_config_var("libdir", "tcl"))
        .unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu".into());
    println!("cargo:rustc-link-search=native={libdir}");
    // The stub library defines `Tcl_InitStubs` and the (hidden) `tclStubsPtr`.
    println!("cargo:rustc-link-lib=static=tclstub{ver}");
    if embed {
        // Only `Tcl_FindExecutable` and `Tcl_CreateInterp` are imported directly.
        println!("cargo:rustc-link-lib=dylib=tcl{ver}");
    }
}
