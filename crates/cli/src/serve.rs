//! `tclcomm serve`: an embedded Tcl interpreter served over comm.
//!
//! The Tcl driver runs in the main thread: the interpreter has our `comm`
//! package (crate `tclcomm-pkg`) loaded, so `::comm::comm` is the serving
//! channel and everything comm offers to served scripts (`return_async`,
//! `remoteid`, hooks, sends back to the caller) works as in tclsh. The
//! event loop runs until a signal thread posts the stop request.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tclcomm_tcl::{EventFlags, Exception, Interp, Interpreter, Obj};

use crate::{Failure, Outcome};

/// Arguments of `tclcomm serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The port to listen on (0: one the OS assigns).
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Listen on every interface, not only 127.0.0.1 (`-local 0`). Anyone
    /// who can reach the port can run any script: use with care.
    #[arg(long)]
    all_interfaces: bool,

    /// Do not report refused handshakes (`-silent 1`).
    #[arg(long)]
    silent: bool,

    /// A Tcl script to evaluate before serving (after --init-file).
    #[arg(long, value_name = "SCRIPT")]
    init: Option<String>,

    /// A Tcl file to source before serving.
    #[arg(long, value_name = "FILE")]
    init_file: Option<PathBuf>,

    /// Seconds a connecting peer has to send its handshake line (default 30).
    #[arg(long, value_name = "SECONDS")]
    handshake_timeout: Option<f64>,

    /// Most incoming connections held at once (default 1024); at the cap,
    /// the oldest that has made no request gives way to a new one.
    #[arg(long, value_name = "N")]
    max_connections: Option<u64>,

    /// Most bytes queued for a peer that does not read, beyond the newest
    /// message, before it is dropped (default 64 MiB).
    #[arg(long, value_name = "BYTES")]
    max_outbound: Option<u64>,

    /// The largest message accepted (default 256 MiB).
    #[arg(long, value_name = "BYTES")]
    max_message: Option<u64>,

    /// Most received bytes held for all connections together (default 512 MiB).
    #[arg(long, value_name = "BYTES")]
    max_buffered: Option<u64>,

    /// Deepest nesting of `[` in a received script (default 1000).
    #[arg(long, value_name = "N")]
    max_nesting: Option<u64>,

    /// Serve over TLS (rustls, no tcl-tls needed): this PEM certificate
    /// chain, with --tls-key. Peers: `tclcomm send --tls-ca`, or tcllib
    /// with `-socketcmd tls::socket`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// PEM CA certificates that client certificates must chain to (those
    /// shown are checked; see --tls-require-client-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,

    /// Refuse clients that show no certificate signed by --tls-ca.
    #[arg(long, requires = "tls_ca")]
    tls_require_client_cert: bool,
}

impl Args {
    /// The `::comm::limits` options these flags set.
    fn limits(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut set = |option: &str, value: Option<u64>| {
            if let Some(v) = value {
                out.push(option.to_string());
                out.push(v.to_string());
            }
        };
        let ms = self
            .handshake_timeout
            .map(|s| (s.max(0.001) * 1000.0).round() as u64);
        set("-handshaketimeout", ms);
        set("-maxconnections", self.max_connections);
        set("-maxoutbound", self.max_outbound);
        set("-maxmessage", self.max_message);
        set("-maxbuffered", self.max_buffered);
        set("-maxnesting", self.max_nesting);
        out
    }
}

fn tcl_failure(what: &str, e: &Exception) -> Failure {
    let detail = e
        .errorinfo
        .as_deref()
        .filter(|i| !i.is_empty())
        .unwrap_or(&e.result);
    Failure::local(format!("tclcomm serve: {what}: {}\n{detail}", e.result))
}

/// Sets the interpreter up: package, channel configuration, init scripts.
fn prepare(interp: Interp<'_>, args: &Args) -> Result<String, Failure> {
    comm::init(interp).map_err(|e| tcl_failure("cannot load the comm package", &e))?;
    let configure = Obj::list_of([
        "::comm::comm",
        "configure",
        "-port",
        &args.port.to_string(),
        "-local",
        if args.all_interfaces { "0" } else { "1" },
        "-silent",
        if args.silent { "1" } else { "0" },
    ]);
    interp
        .eval_obj(&configure)
        .map_err(|e| tcl_failure("cannot listen", &e))?;
    let limits = args.limits();
    if !limits.is_empty() {
        let mut words = vec!["::comm::limits".to_string(), "::comm::comm".to_string()];
        words.extend(limits);
        interp
            .eval_obj(&Obj::list_of(&words))
            .map_err(|e| tcl_failure("bad limit", &e))?;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let mut words = vec!["::comm::tls".to_string(), "::comm::comm".to_string()];
        let mut path = |option: &str, p: &PathBuf| {
            words.push(option.to_string());
            words.push(p.to_string_lossy().into_owned());
        };
        path("-certfile", cert);
        path("-keyfile", key);
        if let Some(ca) = &args.tls_ca {
            path("-cafile", ca);
        }
        if args.tls_require_client_cert {
            words.extend(["-require".to_string(), "1".to_string()]);
        }
        interp
            .eval_obj(&Obj::list_of(&words))
            .map_err(|e| tcl_failure("bad TLS setting", &e))?;
    }
    // Errors of served scripts go back to their senders; comm also reports
    // them as background errors, which tclsh would print as a failure of
    // a missing `bgerror`. One line on stderr instead; an init script may
    // define its own `bgerror`.
    interp
        .eval_global(
            "proc ::bgerror {msg} { catch { puts stderr \"tclcomm serve: background error: $msg\" } }",
        )
        .map_err(|e| tcl_failure("cannot set up bgerror", &e))?;
    if let Some(file) = &args.init_file {
        let path = file.to_string_lossy();
        interp
            .eval_objv(&[
                Obj::string("uplevel"),
                Obj::string("#0"),
                Obj::list_of(["source", path.as_ref()]),
            ])
            .map_err(|e| tcl_failure(&format!("--init-file {path} failed"), &e))?;
    }
    if let Some(script) = &args.init {
        interp
            .eval_global(script)
            .map_err(|e| tcl_failure("--init failed", &e))?;
    }
    let id = interp
        .eval("::comm::comm self")
        .map_err(|e| tcl_failure("no id", &e))?;
    Ok(id.to_str().into_owned())
}

/// Runs `tclcomm serve`.
pub(crate) fn run(args: Args) -> Outcome {
    let tcl = Interpreter::new().map_err(|e| tcl_failure("cannot create a Tcl interpreter", &e))?;
    let interp = tcl.interp();
    let stop = Arc::new(AtomicBool::new(false));
    // Signals first: one arriving during the init scripts still stops us.
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure::local(format!("tclcomm serve: cannot handle signals: {e}")))?;
    let poster = interp.poster();
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first = true;
            for sig in signals.forever() {
                if !first {
                    // A second signal while shutting down: give up at once.
                    std::process::exit(128 + sig);
                }
                first = false;
                tracing::info!(signal = sig, "stopping");
                flag.store(true, Ordering::Release);
                // Wakes the event loop; the job itself has nothing to do.
                let posted = poster.post(|| {});
                tracing::debug!(?posted, "stop posted");
            }
        })
        .map_err(|e| {
            Failure::local(format!(
                "tclcomm serve: cannot start the signal thread: {e}"
            ))
        })?;

    let id = prepare(interp, &args)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{id}")
            .and_then(|()| out.flush())
            .map_err(|e| Failure::local(format!("tclcomm serve: cannot print the id: {e}")))?;
    }
    tracing::info!(%id, "serving");
    while !stop.load(Ordering::Acquire) {
        interp.do_one_event(EventFlags::ALL);
    }
    // Close the listener and every connection (pending callers get comm's
    // `Connection aborted by request`) before the interpreter goes.
    tracing::debug!("event loop left");
    let _ = interp.eval("::comm::comm destroy");
    tracing::debug!("channel destroyed");
    drop(tcl);
    tracing::debug!("interpreter deleted");
    Ok(())
}
