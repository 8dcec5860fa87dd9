//! `tclcomm tcl-package`: lays out our Tcl `comm` package (and
//! `transfer::connect`) for tclsh.
//!
//! The shared library comes from inside this binary (see build.rs), so an
//! installed `tclcomm` needs no source tree; `--library` installs another.

use std::path::{Path, PathBuf};

use comm::TclVersion;

use crate::{Failure, Outcome};

/// The package's shared library, built by build.rs from crates/comm-pkg
/// with the same profile as this binary.
pub(crate) static EMBEDDED: &[u8] = include_bytes!(env!("TCLCOMM_EMBEDDED_LIBRARY"));

/// Its Tcl 9 build (feature `tcl9`), when Tcl 9 was found at build time.
#[cfg(tclcomm_embed_tcl9)]
pub(crate) static EMBEDDED_TCL9: Option<&[u8]> =
    Some(include_bytes!(env!("TCLCOMM_EMBEDDED_LIBRARY_TCL9")));
/// Its Tcl 9 build (feature `tcl9`), when Tcl 9 was found at build time.
#[cfg(not(tclcomm_embed_tcl9))]
pub(crate) static EMBEDDED_TCL9: Option<&[u8]> = None;

/// How `TCLLIBPATH` is explained everywhere (hint, help, README): the
/// directory given to `tcl-package` itself goes on it.
pub(crate) fn tcllibpath_hint(dir: &Path) -> String {
    format!(
        "Use it with: TCLLIBPATH={} tclsh   (then `package require comm`), \
         or `lappend auto_path {}` in a script",
        shell_word(dir),
        tcl_word(dir)
    )
}

/// `dir` quoted for a POSIX shell when it needs it.
fn shell_word(dir: &Path) -> String {
    let s = dir.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `dir` as one Tcl word.
fn tcl_word(dir: &Path) -> String {
    tclcomm_wire::list::format_list([dir.display().to_string()])
}

/// Arguments of `tclcomm tcl-package`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The package directory DIR then goes on TCLLIBPATH: `TCLLIBPATH=DIR tclsh`, \
or `lappend auto_path DIR` in a script, then `package require comm`. \
It holds a library for Tcl 8.6 (libcomm.so) and, when this tclcomm was built \
with Tcl 9 available (TCL9_PREFIX), one for Tcl 9 (libtcl9comm.so); \
pkgIndex.tcl loads the one of the running shell.")]
pub(crate) struct Args {
    /// The directory to create or fill (it becomes the package directory:
    /// put DIR itself on TCLLIBPATH).
    dir: PathBuf,

    /// Install this shared library instead of the ones carried by this
    /// binary (also: $TCLCOMM_LIBRARY). It must be a build of crates/comm-pkg,
    /// for Tcl 8.6 or (feature tcl9) Tcl 9: repeat the option for both.
    #[arg(long, value_name = "FILE")]
    library: Vec<PathBuf>,

    /// Overwrite files in DIR that tcl-package did not write (another
    /// package's pkgIndex.tcl, say).
    #[arg(long)]
    force: bool,
}

/// The files `write_package` writes.
fn package_files() -> [&'static str; 5] {
    [
        "pkgIndex.tcl",
        "comm.tcl",
        comm::LIBRARY_FILE,
        comm::LIBRARY_FILE_TCL9,
        comm::TRANSFER_CONNECT_FILE,
    ]
}

/// Whether `dir/pkgIndex.tcl` is one that tcl-package wrote.
fn ours(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("pkgIndex.tcl"))
        .is_ok_and(|s| s.starts_with("# tclcomm ") && s.contains("package ifneeded comm "))
}

/// Checks that `bytes` is a shared library with the package's entry point,
/// so that a wrong file is refused here and not by `package require` later.
pub(crate) fn check_library(bytes: &[u8]) -> Result<(), String> {
    let shared = match bytes {
        [0x7f, b'E', b'L', b'F', ..] => elf_shared_library(bytes),
        // Mach-O (32/64 bit, either order) and PE.
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
        | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
        | [b'M', b'Z', ..] => true,
        _ => false,
    };
    if !shared {
        return Err("not a shared library".to_string());
    }
    if memchr_all(bytes, b"Comm_Init") {
        Ok(())
    } else {
        Err("a shared library, but not the comm package (no Comm_Init)".to_string())
    }
}

/// An ELF file of type ET_DYN without a PT_INTERP program header: a shared
/// library, not a (position-independent) executable such as `tclcomm`
/// itself, which also holds `Comm_Init`.
fn elf_shared_library(b: &[u8]) -> bool {
    let (Some(&class), Some(&data)) = (b.get(4), b.get(5)) else {
        return false;
    };
    let read = |at: usize, n: usize| -> Option<u64> {
        let bytes = b.get(at..at + n)?;
        let fold = |v: u64, x: &u8| (v << 8) | u64::from(*x);
        Some(if data == 2 {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        })
    };
    let Some(3) = read(16, 2) else {
        return false;
    };
    let (phoff, phentsize, phnum) = match class {
        1 => (read(28, 4), read(42, 2), read(44, 2)),
        2 => (read(32, 8), read(54, 2), read(56, 2)),
        _ => return false,
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return false;
    };
    (0..phnum).all(|i| {
        let at = phoff.saturating_add(i.saturating_mul(phentsize));
        usize::try_from(at)
            .ok()
            .and_then(|at| read(at, 4))
            .is_some_and(|p_type| p_type != 3)
    })
}

fn memchr_all(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs `tclcomm tcl-package`.
pub(crate) fn run(args: Args) -> Outcome {
    let mut given = args.library.clone();
    if given.is_empty()
        && let Some(p) = std::env::var_os("TCLCOMM_LIBRARY")
    {
        given.push(PathBuf::from(p));
    }
    let mut libraries: Vec<(TclVersion, std::borrow::Cow<'static, [u8]>)> = Vec::new();
    let source = if given.is_empty() {
        libraries.push((TclVersion::Tcl86, std::borrow::Cow::Borrowed(EMBEDDED)));
        if let Some(lib) = EMBEDDED_TCL9 {
            libraries.push((TclVersion::Tcl9, std::borrow::Cow::Borrowed(lib)));
        }
        "this tclcomm".to_string()
    } else {
        for path in &given {
            let bytes = std::fs::read(path).map_err(|e| {
                Failure::local(format!(
                    "tclcomm: no library at {}: {e}\n\
                     Leave out --library (and TCLCOMM_LIBRARY) to install the one this tclcomm carries.",
                    path.display()
                ))
            })?;
            check_library(&bytes).map_err(|why| {
                Failure::local(format!(
                    "tclcomm: {} is not a comm package library: {why}\n\
                     Give the {} built from crates/comm-pkg (`cargo build --release -p tclcomm-pkg` \
                     writes target/release/{}), or leave out --library.",
                    path.display(),
                    comm::LIBRARY_FILE,
                    comm::LIBRARY_FILE
                ))
            })?;
            let version = TclVersion::of_library(&bytes).unwrap_or(TclVersion::Tcl86);
            libraries.push((version, std::borrow::Cow::Owned(bytes)));
        }
        given
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !args.force && !ours(&args.dir) {
        let foreign: Vec<&str> = package_files()
            .into_iter()
            .filter(|f| args.dir.join(f).exists())
            .collect();
        if !foreign.is_empty() {
            return Err(Failure::local(format!(
                "tclcomm: {} already holds {} that tcl-package did not write; not overwriting.\n\
                 Choose an empty or new directory (e.g. {}), or pass --force to replace them.",
                args.dir.display(),
                foreign.join(", "),
                args.dir.join("tclcomm").display()
            )));
        }
    }
    let refs: Vec<(TclVersion, &[u8])> = libraries.iter().map(|(v, b)| (*v, &**b)).collect();
    comm::write_package_for(&args.dir, &refs).map_err(|e| {
        Failure::local(format!(
            "tclcomm: cannot write the package to {}: {e}\n\
             Choose a directory you can write, e.g. ~/.local/share/tcl/comm.",
            args.dir.display()
        ))
    })?;
    println!("{}", args.dir.display());
    let versions: Vec<String> = refs
        .iter()
        .map(|(v, _)| format!("Tcl {} ({})", v.label(), v.library_file()))
        .collect();
    let no9 = if refs.iter().any(|(v, _)| *v == TclVersion::Tcl9) {
        ""
    } else if given.is_empty() {
        "\nThis tclcomm carries no Tcl 9 library (it was built without Tcl 9: \
         build it with TCL9_PREFIX set to a Tcl 9 from ../shared/tools/tcl9-env)."
    } else {
        ""
    };
    eprintln!(
        "Installed comm {} for {} (and transfer::connect {}) from {} into {}.{no9}\n{}",
        comm::COMM_VERSION,
        versions.join(" and "),
        comm::TRANSFER_CONNECT_VERSION,
        source,
        args.dir.display(),
        tcllibpath_hint(&args.dir)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carried_library_is_one() {
        assert_eq!(check_library(EMBEDDED), Ok(()));
    }

    #[test]
    fn other_files_are_refused() {
        assert!(check_library(b"hello").is_err());
        assert!(
            check_library(&[
                0x7f, b'E', b'L', b'F', 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0
            ])
            .is_err()
        );
        // A position-independent executable is ET_DYN too, and this one
        // holds the string Comm_Init.
        let exe = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        assert!(check_library(&exe).is_err());
    }
}
