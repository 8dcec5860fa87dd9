//! Links the Tcl stub library (always) and libtcl (feature `embed`).
//! No bindgen, no C compiler: the declarations are hand-written in `src/sys.rs`.

use std::env;
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

fn main() {
    println!("cargo:rerun-if-env-changed=TCL_LIB_DIR");
    println!("cargo:rerun-if-env-changed=TCL_VERSION");
    let ver = env::var("TCL_VERSION").unwrap_or_else(|_| "8.6".into());
    let libdir = env::var("TCL_LIB_DIR")
        .ok()
        .or_else(|| pkg_config_var("libdir", &format!("tcl{ver}")))
        .or_else(|| pkg_config_var("libdir", "tcl"))
        .unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu".into());
    println!("cargo:rustc-link-search=native={libdir}");
    // The stub library defines `Tcl_InitStubs` and the (hidden) `tclStubsPtr`.
    println!("cargo:rustc-link-lib=static=tclstub{ver}");
    if env::var_os("CARGO_FEATURE_EMBED").is_some() {
        // Only `Tcl_FindExecutable` and `Tcl_CreateInterp` are imported directly.
        println!("cargo:rustc-link-lib=dylib=tcl{ver}");
    }
}
