//! The hand-written bindings (`sys.rs`) against each Tcl's real headers,
//! whichever Tcl this build is for: a small C++ file is generated from
//! `sys::abi`, compiled with `USE_TCL_STUBS` against Tcl 8.6's `tcl.h` /
//! `tclDecls.h` and against Tcl 9.0's, and run. It prints, for every function
//! we declare, its slot in `TclStubs` (from `offsetof`), the size of its
//! result and of each argument, and for a pointer argument the size of an
//! integer or floating-point pointee (so `int *` against `Tcl_Size *` is
//! caught too); and the layouts of the structs we mirror and the stub magic.
//! Everything must equal what Rust computes from our declarations.
//!
//! Needs a C++ compiler (`c++`, or `$CXX`), Tcl 8.6's headers
//! (`/usr/include/tcl8.6`, or `$TCL86_INCLUDE`) and Tcl 9's
//! (`$TCL9_PREFIX/usr/include/tcl9.0`, unpacked by
//! `../shared/tools/tcl9-env`, or `$TCL9_INCLUDE`): missing, the test fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use tclcomm_tcl::sys::abi::{Layout, Sig};

/// The size of the pointee of a pointer type written in Rust, when it is a
/// number (0 otherwise), as the C++ side reports it.
fn pointee_size(ty: &str, size: usize) -> usize {
    let ty = ty.replace(' ', "");
    if ty == "FreePtr" {
        // `char *` on 8.6, `void *` on 9 (see sys.rs).
        return if size == 4 { 1 } else { 0 };
    }
    let Some(inner) = ty
        .strip_prefix("*mut")
        .or_else(|| ty.strip_prefix("*const"))
    else {
        return 0;
    };
    match inner {
        "c_int" | "c_uint" | "i32" | "u32" => 4,
        "Size" | "AllocSize" => size,
        "i64" | "u64" | "f64" | "isize" | "usize" => 8,
        "c_char" | "c_uchar" | "u8" | "i8" => 1,
        _ => 0,
    }
}

/// What the C++ program prints, computed from our declarations.
fn expected(sigs: &[Sig], layout: Layout, size: usize) -> String {
    let mut out = String::new();
    for s in sigs {
        let Some(slot) = s.slot else { continue };
        let _ = write!(out, "{} {} {}", s.name, slot, s.ret);
        for (a, t) in s.args.iter().zip(s.types) {
            let _ = write!(out, " {a}/{}", pointee_size(t, size));
        }
        out.push('\n');
    }
    for (what, v) in layout {
        let _ = writeln!(out, "{what} {v}");
    }
    out
}

/// The C++ program for `sigs`: one line per function, then the layouts.
fn program(sigs: &[Sig], layout: Layout) -> String {
    let mut p = String::from(
        r#"#define USE_TCL_STUBS 1
#include <cstdio>
#include <cstddef>
#include <type_traits>
#include <tcl.h>

template <class T> struct Sz { static const size_t v = sizeof(T); };
template <> struct Sz<void> { static const size_t v = 0; };
template <class P, bool Number> struct PSz { static const size_t v = 0; };
template <class P> struct PSz<P, true> { static const size_t v = sizeof(P); };
template <class T> size_t pointee() {
    typedef typename std::remove_cv<typename std::remove_pointer<T>::type>::type P;
    return std::is_pointer<T>::value ? PSz<P, std::is_arithmetic<P>::value>::v : 0;
}
template <class R, class... A>
void sig(const char *name, size_t off, R (*)(A...)) {
    size_t first = offsetof(TclStubs, tcl_PkgProvideEx);
    std::printf("%s %zu %zu", name, (off - first) / sizeof(void *), Sz<R>::v);
    size_t sizes[] = {Sz<A>::v..., 0};
    size_t ptees[] = {pointee<A>()..., 0};
    for (size_t i = 0; i < sizeof...(A); i++) std::printf(" %zu/%zu", sizes[i], ptees[i]);
    std::printf("\n");
}
int main() {
"#,
    );
    for s in sigs {
        if s.slot.is_none() {
            continue;
        }
        // The field of TclStubs: the name with its first letter lowered.
        let mut field = s.name.to_string();
        field.replace_range(0..1, &field[0..1].to_lowercase());
        if s.name == "Tcl_Exit" {
            // TCL_NORETURN on Tcl 9 makes its type one that `sig` cannot
            // take apart: only its slot is checked (its one argument is
            // the `int` status on both versions).
            let _ = writeln!(
                p,
                "    std::printf(\"Tcl_Exit %zu 0 4/0\\n\", (offsetof(TclStubs, tcl_Exit) - \
                 offsetof(TclStubs, tcl_PkgProvideEx)) / sizeof(void *));"
            );
            continue;
        }
        let _ = writeln!(
            p,
            "    sig(\"{n}\", offsetof(TclStubs, {field}), (decltype(((TclStubs *)0)->{field}))0);",
            n = s.name
        );
    }
    for (what, _) in layout {
        let _ = writeln!(
            p,
            "    std::printf(\"%s %zu\\n\", \"{what}\", (size_t)({what}));"
        );
    }
    p.push_str("    return 0;\n}\n");
    p
}

/// Compiles and runs the program against the headers in `include`.
fn run(tag: &str, include: &Path, sigs: &[Sig], layout: Layout) -> String {
    assert!(
        include.join("tcl.h").is_file() && include.join("tclDecls.h").is_file(),
        "{}: no tcl.h/tclDecls.h there",
        include.display()
    );
    let dir = std::env::temp_dir().join(format!("tclcomm-abi-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("abi.cpp");
    let exe = dir.join("abi");
    std::fs::write(&src, program(sigs, layout)).expect("write abi.cpp");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&cxx)
        .arg("-std=c++11")
        .arg("-I")
        .arg(include)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler {cxx:?} (install g++): {e}"));
    assert!(
        out.status.success(),
        "compiling against {}:\n{}",
        include.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = Command::new(&exe).output().expect("run abi");
    assert!(got.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(got.stdout).expect("ascii")
}

/// Compares line by line, naming every line that differs.
fn compare(tag: &str, got: &str, want: &str) {
    let diffs: Vec<String> = got
        .lines()
        .zip(want.lines())
        .filter(|(g, w)| g != w)
        .map(|(g, w)| format!("  headers: {g}\n  ours:    {w}"))
        .collect();
    assert!(
        diffs.is_empty() && got.lines().count() == want.lines().count(),
        "{tag}: the bindings differ from the headers:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn tcl86_headers() {
    let include = std::env::var_os("TCL86_INCLUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/include/tcl8.6".into());
    use tclcomm_tcl::sys::abi::v8;
    let got = run("8.6", &include, v8::SIGS, v8::LAYOUT);
    compare("Tcl 8.6", &got, &expected(v8::SIGS, v8::LAYOUT, 4));
}

#[test]
fn tcl9_headers() {
    let include = std::env::var_os("TCL9_INCLUDE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("TCL9_PREFIX").map(|p| PathBuf::from(p).join("usr/include/tcl9.0"))
        })
        .expect(
            "Tcl 9's headers are needed: set TCL9_PREFIX to a directory unpacked by \
             ../shared/tools/tcl9-env (or TCL9_INCLUDE to the directory of its tcl.h)",
        );
    use tclcomm_tcl::sys::abi::v9;
    let got = run("9", &include, v9::SIGS, v9::LAYOUT);
    compare("Tcl 9", &got, &expected(v9::SIGS, v9::LAYOUT, 8));
}
