//! `tclcomm tcl-package`: lays out our Tcl `comm` package (and
//! `transfer::connect`) for tclsh.

use std::path::{Path, PathBuf};

use crate::{Failure, Outcome};

/// Arguments of `tclcomm tcl-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The directory to create or fill.
    dir: PathBuf,

    /// The shared library to install (default: the one next to this
    /// executable, as cargo builds it in target/release or target/debug).
    #[arg(long, value_name = "FILE")]
    library: Option<PathBuf>,
}

/// Where cargo puts the library next to the `tclcomm` executable.
pub(crate) fn candidates() -> Vec<PathBuf> {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let mut v = vec![
        dir.join(comm::LIBRARY_FILE),
        dir.join("deps").join(comm::LIBRARY_FILE),
    ];
    // A test binary lives in target/<profile>/deps.
    if dir.file_name().is_some_and(|n| n == "deps")
        && let Some(up) = dir.parent()
    {
        v.insert(0, up.join(comm::LIBRARY_FILE));
    }
    v
}

/// Runs `tclcomm tcl-package`.
pub(crate) fn run(args: Args) -> Outcome {
    let library = match args.library {
        Some(l) if l.is_file() => l,
        Some(l) => {
            return Err(Failure::local(format!(
                "tclcomm: no library at {}",
                l.display()
            )));
        }
        None => match comm::find_library() {
            Some(p) if p.is_file() => p,
            _ => {
                let list: Vec<String> = candidates()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(Failure::local(format!(
                    "tclcomm: {} not found (looked in: {}).\n\
                     Build it first: `cargo build --release -p tclcomm-pkg` (or without --release \
                     for target/debug), then run the tclcomm of the same profile, or pass --library FILE \
                     (or set TCLCOMM_LIBRARY).",
                    comm::LIBRARY_FILE,
                    if list.is_empty() {
                        "nowhere".to_string()
                    } else {
                        list.join(", ")
                    }
                )));
            }
        },
    };
    comm::write_package(&args.dir, &library).map_err(|e| {
        Failure::local(format!(
            "tclcomm: cannot write the package to {}: {e}",
            args.dir.display()
        ))
    })?;
    println!("{}", args.dir.display());
    eprintln!(
        "Installed comm {} (and transfer::connect {}) from {}.\nUse it with: TCLLIBPATH={} tclsh   (then `package require comm`)",
        comm::COMM_VERSION,
        comm::TRANSFER_CONNECT_VERSION,
        library.display(),
        args.dir.display()
    );
    Ok(())
}
