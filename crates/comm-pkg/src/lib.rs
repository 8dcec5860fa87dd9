//! The `comm` package for Tcl, in Rust: a drop-in replacement for tcllib's
//! `comm` 4.7 that runs on the Tcl event loop, on the interpreter's own
//! thread, and drives the sans-IO protocol engine of `tclcomm-wire`.
//!
//! Built as `libcomm.so` (entry points `Comm_Init`/`Comm_SafeInit`), it is
//! loaded by plain `tclsh` with `package require comm` (version 4.8, above
//! tcllib's so it wins when both are installed). From Rust, [`init`] installs
//! it in an embedded interpreter:
//!
//! ```
//! use tclcomm_tcl::Interpreter;
//!
//! let tcl = Interpreter::new().unwrap(); // tclcomm-tcl feature `embed`
//! let interp = tcl.interp();
//! comm::init(interp).unwrap();
//! assert_eq!(interp.eval("package provide comm").unwrap().to_str(), "4.8");
//! // A round trip to ourselves over a socket, as with tcllib.
//! let r = interp
//!     .eval("::comm::comm send [::comm::comm self] {expr {6 * 7}}")
//!     .unwrap();
//! assert_eq!(r.to_str(), "42");
//! ```
//!
//! What is Tcl and what is Rust: the API surface that is naturally Tcl
//! (argument checking with tcllib's exact `wrong # args` errors, hooks run in
//! a frame that holds tcllib's documented local variables, configuration) is
//! a Tcl library embedded here and evaluated at load time; connections,
//! framing, quoting, serials, pending calls, the evaluation of received
//! scripts without hooks, futures and the event-loop wait of a synchronous
//! `send` are Rust.
//!
//! [`write_package`] lays out a package directory for `TCLLIBPATH`.

mod listen;
mod state;
mod tls;

use std::path::Path;
use std::rc::Rc;

use tclcomm_tcl::{Exception, Interp, Obj};

use state::Comm;

/// The version `package require comm` gives.
pub const COMM_VERSION: &str = "4.8";

/// The version of this crate, also provided as package `tclcomm`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The file name of the shared library for Tcl 8.6 on this platform
/// (TEA's name; the name cargo gives the cdylib of either build).
pub const LIBRARY_FILE: &str = if cfg!(target_os = "macos") {
    "libcomm.dylib"
} else if cfg!(windows) {
    "comm.dll"
} else {
    "libcomm.so"
};

/// The file name of the shared library for Tcl 9 on this platform (TEA's
/// name for a Tcl 9 build: `tcl9` before the package name), beside
/// [`LIBRARY_FILE`] in the same package directory.
pub const LIBRARY_FILE_TCL9: &str = if cfg!(target_os = "macos") {
    "libtcl9comm.dylib"
} else if cfg!(windows) {
    "tcl9comm.dll"
} else {
    "libtcl9comm.so"
};

/// The Tcl a build of this package is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TclVersion {
    /// Tcl 8.6 (the default build).
    Tcl86,
    /// Tcl 9.0 (feature `tcl9`).
    Tcl9,
}

impl TclVersion {
    /// The version this build is for.
    pub const BUILT: TclVersion = if cfg!(feature = "tcl9") {
        TclVersion::Tcl9
    } else {
        TclVersion::Tcl86
    };

    /// The library's file name in a package directory.
    pub fn library_file(self) -> &'static str {
        match self {
            TclVersion::Tcl86 => LIBRARY_FILE,
            TclVersion::Tcl9 => LIBRARY_FILE_TCL9,
        }
    }

    /// `8.6` or `9.0`.
    pub fn label(self) -> &'static str {
        match self {
            TclVersion::Tcl86 => "8.6",
            TclVersion::Tcl9 => "9.0",
        }
    }

    /// The text a build for this version carries (and sets as
    /// `$::tclcomm::built_for`), by which a library file tells which Tcl it
    /// is for. Assembled at run time: as one literal, every build would
    /// carry every version's marker.
    pub fn marker(self) -> String {
        format!("{MARKER_PREFIX}{}", self.label())
    }

    /// Which Tcl the shared library `bytes` was built for, by its marker.
    pub fn of_library(bytes: &[u8]) -> Option<TclVersion> {
        [TclVersion::Tcl86, TclVersion::Tcl9].into_iter().find(|v| {
            let m = v.marker();
            bytes.windows(m.len()).any(|w| w == m.as_bytes())
        })
    }
}

/// The start of [`TclVersion::marker`].
const MARKER_PREFIX: &str = "tclcomm comm package for Tcl ";

/// This build's marker, as the one literal that holds it.
const BUILT_MARKER: &str = if cfg!(feature = "tcl9") {
    "tclcomm comm package for Tcl 9.0"
} else {
    "tclcomm comm package for Tcl 8.6"
};

/// The Tcl half of the package.
const LIBRARY: &str = include_str!("comm.tcl");

/// The version `package require transfer::connect` gives: above tcllib's
/// (0.2 in tcllib 1.21, 0.3 at its head), so that ours wins when both are
/// installed, and tcllib's transmitter and receiver run on top of it.
pub const TRANSFER_CONNECT_VERSION: &str = "0.4";

/// The file name of [`TRANSFER_CONNECT_TCL`] in a package directory.
pub const TRANSFER_CONNECT_FILE: &str = "transfer_connect.tcl";

/// `transfer::connect` in plain Tcl (no snit, no shared library): a drop-in
/// for tcllib's, installed next to the library by [`write_package`].
pub const TRANSFER_CONNECT_TCL: &str = include_str!("transfer_connect.tcl");

/// Installs the `comm` package in `interp`, as `package require comm`
/// does: the `::comm` namespace, the default channel `::comm::comm`
/// (listening on an OS-assigned port on 127.0.0.1), and
/// `package provide comm 4.8` and `package provide tclcomm <version>`.
///
/// Calling it again (for instance after `namespace delete ::comm`) aborts
/// every channel of the interpreter and starts afresh.
pub fn init(interp: Interp<'_>) -> Result<(), Exception> {
    let comm = Comm::of(interp);
    comm.reset(interp);
    interp.create_namespace("::comm")?;
    interp.create_namespace("::tclcomm")?;
    type Cmd = fn(Interp<'_>, &Rc<Comm>, &[Obj]) -> Result<Obj, Exception>;
    let commands: [(&str, Cmd); 20] = [
        ("RListen", listen::cmd_listen),
        ("RStats", state::cmd_stats),
        ("RHook", state::cmd_hook),
        ("RInterp", state::cmd_interp),
        ("RNew", state::cmd_new),
        ("RDestroy", state::cmd_destroy),
        ("RSetId", state::cmd_set_id),
        ("RSerial", state::cmd_serial),
        ("RIds", state::cmd_ids),
        ("RRemoteid", state::cmd_remoteid),
        ("RPeer", state::cmd_peer),
        ("RShutdown", state::cmd_shutdown),
        ("RAbort", state::cmd_abort),
        ("RConnected", state::cmd_connected),
        ("RAccepted", state::cmd_accepted),
        ("RReturnAsync", state::cmd_return_async),
        ("comm_cmd_send", state::send),
        ("RState", state::cmd_state),
        ("RMethod", state::cmd_method),
        ("RInit", cmd_init),
    ];
    for (name, f) in commands {
        let c = comm.clone();
        interp.create_command(&format!("::comm::{name}"), move |i, objv| f(i, &c, objv));
    }
    interp.create_command("::tclcomm::init", |i, _| init(i).map(|()| Obj::new()));
    let c = comm.clone();
    interp.create_command("::comm::limits", move |i, objv| {
        state::cmd_limits(i, &c, objv)
    });
    let c = comm.clone();
    interp.create_command("::comm::auth", move |i, objv| state::cmd_auth(i, &c, objv));
    let c = comm.clone();
    interp.create_command("::comm::tls", move |i, objv| tls::cmd_tls(i, &c, objv));
    interp.eval_global(LIBRARY)?;
    interp.set_var("::tclcomm::built_for", &Obj::string(BUILT_MARKER))?;
    interp.pkg_provide("comm", COMM_VERSION)?;
    interp.pkg_provide("tclcomm", VERSION)?;
    Ok(())
}

fn cmd_init(i: Interp<'_>, _: &Rc<Comm>, _: &[Obj]) -> Result<Obj, Exception> {
    init(i).map(|()| Obj::new())
}

/// The Tcl expression that names this Tcl's library file.
fn library_expr() -> String {
    format!(
        "[expr {{[package vsatisfies [package provide Tcl] 9.0-] ? \
         {{{LIBRARY_FILE_TCL9}}} : {{{LIBRARY_FILE}}}}}]"
    )
}

/// The `pkgIndex.tcl` for a directory holding [`LIBRARY_FILE`] (Tcl 8.6)
/// and/or [`LIBRARY_FILE_TCL9`] (Tcl 9): each shell loads its own. A shell
/// whose library is not in the directory gets no `comm` from it (another
/// directory's, tcllib's say, stays available).
pub fn pkg_index() -> String {
    let lib = library_expr();
    format!(
        "# tclcomm {VERSION}: the comm package in Rust\n\
         if {{![package vsatisfies [package provide Tcl] 8.6-]}} {{return}}\n\
         if {{![file exists [file join $dir {lib}]]}} {{return}}\n\
         package ifneeded comm {COMM_VERSION} [list apply {{{{dir}} {{\n\
         \x20   load [file join $dir {lib}] Comm\n\
         \x20   # A second load in the same interpreter does not call Comm_Init:\n\
         \x20   # after `namespace delete ::comm`, start afresh.\n\
         \x20   if {{![llength [info commands ::comm::comm]]}} {{::tclcomm::init}}\n\
         }}}} $dir]\n\
         package ifneeded tclcomm {VERSION} [list apply {{{{dir}} {{\n\
         \x20   package require comm {COMM_VERSION}\n\
         }}}} $dir]\n\
         package ifneeded transfer::connect {TRANSFER_CONNECT_VERSION} \
         [list source [file join $dir {TRANSFER_CONNECT_FILE}]]\n"
    )
}

/// A `comm.tcl` that a harness may `source` in place of tcllib's (tcllib's
/// own test suite does `namespace delete ::comm; source comm.tcl`): it
/// loads the library next to it.
pub fn comm_tcl_shim() -> String {
    let lib = library_expr();
    format!(
        "# Loads tclcomm's comm package (Rust) from this directory.\n\
         apply {{{{dir}} {{\n\
         \x20   load [file join $dir {lib}] Comm\n\
         \x20   if {{![llength [info commands ::comm::comm]]}} {{::tclcomm::init}}\n\
         }}}} [file dirname [file normalize [info script]]]\n"
    )
}

/// Finds the built shared library for [`write_package`]: `$TCLCOMM_LIBRARY`
/// if set, else [`LIBRARY_FILE`] next to the running executable or in its
/// `deps/` directory (where cargo leaves it when a binary crate such as the
/// CLI depends on this crate: `cargo build --release -p tclcomm-cli` writes
/// `target/release/deps/libcomm.so`; only `-p tclcomm-pkg` also copies it to
/// `target/release/libcomm.so`), or in `../lib`.
pub fn find_library() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("TCLCOMM_LIBRARY") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join(LIBRARY_FILE),
        dir.join("deps").join(LIBRARY_FILE),
        dir.join("..").join(LIBRARY_FILE),
        dir.join("..").join("lib").join(LIBRARY_FILE),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Lays out a Tcl package directory: copies the shared library `library`
/// into `dir` as [`LIBRARY_FILE`] and writes `pkgIndex.tcl` (and the
/// `comm.tcl` shim, and `transfer::connect`'s [`TRANSFER_CONNECT_FILE`]),
/// so that `TCLLIBPATH=dir tclsh` followed by `package require comm` (or
/// `package require transfer::connect`) loads this package.
///
/// The library may be a build for either Tcl: its marker
/// ([`TclVersion::of_library`]) decides the name it gets (8.6 when it has
/// none).
pub fn write_package(dir: &Path, library: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(library)?;
    let version = TclVersion::of_library(&bytes).unwrap_or(TclVersion::Tcl86);
    write_package_for(dir, &[(version, &bytes)])
}

/// [`write_package`] with the contents of a Tcl 8.6 build of the shared
/// library in memory (the `tclcomm` binary carries them).
pub fn write_package_bytes(dir: &Path, library: &[u8]) -> std::io::Result<()> {
    write_package_for(dir, &[(TclVersion::Tcl86, library)])
}

/// Lays out a package directory with a library per Tcl version (the
/// contents of a build of this crate for that version, each installed under
/// its [`TclVersion::library_file`] name) and the files of
/// [`write_package`]; the one `pkgIndex.tcl` loads the right library in
/// tclsh 8.6 and in tclsh 9.
pub fn write_package_for(dir: &Path, libraries: &[(TclVersion, &[u8])]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (version, library) in libraries {
        let file = version.library_file();
        let target = dir.join(file);
        // Write under a temporary name: a running tclsh may have the old
        // file mapped, and replacing it in place would corrupt that process.
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, library)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&tmp, &target)?;
    }
    std::fs::write(dir.join("pkgIndex.tcl"), pkg_index())?;
    std::fs::write(dir.join("comm.tcl"), comm_tcl_shim())?;
    std::fs::write(dir.join(TRANSFER_CONNECT_FILE), TRANSFER_CONNECT_TCL)?;
    Ok(())
}

/// The entry point `load` calls (`load libcomm.so Comm`).
///
/// # Safety
/// Called by Tcl with a live interpreter of the current thread.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Comm_Init(interp: *mut std::ffi::c_void) -> std::ffi::c_int {
    // SAFETY: Tcl passes the live interpreter being initialised, on the
    // current thread; `init_extension` catches panics.
    unsafe { tclcomm_tcl::sys::init_extension(interp, init) }
}

/// The entry point for safe interpreters. Sockets are not available there,
/// so the default channel cannot listen and the load fails with Tcl's error.
///
/// # Safety
/// Called by Tcl with a live interpreter of the current thread.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Comm_SafeInit(interp: *mut std::ffi::c_void) -> std::ffi::c_int {
    // SAFETY: as for `Comm_Init`.
    unsafe { tclcomm_tcl::sys::init_extension(interp, init) }
}
