//! `tclcomm serve`: an embedded Tcl interpreter served over comm.
//!
//! The Tcl driver runs in the main thread: the interpreter has our `comm`
//! package (crate `tclcomm-pkg`) loaded, so `::comm::comm` is the serving
//! channel and everything comm offers to served scripts (`return_async`,
//! `remoteid`, hooks, sends back to the caller) works as in tclsh. The
//! event loop runs until a signal thread posts the stop request.

use std::io::{IsTerminal, Write};
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

    /// Do not print the errors of received scripts on stderr (their
    /// senders get them back in any case; `-async` sends get nothing back).
    #[arg(long)]
    quiet_errors: bool,

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

    #[command(flatten)]
    auth: crate::auth::AuthArgs,

    /// Register under this name at the name server (see --names; `tclcomm
    /// names serve` or tcllib's nnsd), so that `tclcomm send NAME ...`
    /// finds this server. Bound before the id is printed (a name someone
    /// else holds is an error), held while serving, and bound again if the
    /// name server restarts.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    #[command(flatten)]
    names: crate::names::NamesArg,

    /// Run received scripts in a safe interpreter (Tcl's `interp create
    /// -safe`: no files, sockets, exec or env) instead of the serving one.
    #[arg(long)]
    safe: bool,

    /// Run received scripts in an interpreter that has only this command
    /// (repeat the flag for more), as an alias of the serving
    /// interpreter's command of that name (defined there by --init or
    /// --init-file), like tcllib's nns server. An alias runs with the
    /// serving interpreter's full power: allow only commands that do not
    /// evaluate their arguments.
    #[arg(long, value_name = "COMMAND")]
    allow: Vec<String>,

    /// Check each request first: this Tcl command prefix is called with
    /// the sender's id and the script; if it raises an error the request is
    /// refused and the sender gets that error (Tcl-DP's -check).
    #[arg(long, value_name = "COMMAND")]
    check: Option<String>,

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

/// Whether -v was given: Tcl tracebacks (errorInfo) are shown only then.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// A failure of Tcl set-up: what failed and Tcl's message; the traceback
/// (through the package's internal procs) only with -v.
fn tcl_failure(what: &str, e: &Exception) -> Failure {
    tcl_failure_hint(what, e, None)
}

/// [`tcl_failure`] with what to try, printed before the traceback note.
fn tcl_failure_hint(what: &str, e: &Exception, hint: Option<String>) -> Failure {
    let mut message = format!("tclcomm serve: {what}: {}", e.result);
    if let Some(hint) = hint {
        message.push('\n');
        message.push_str(&hint);
    }
    let info = e.errorinfo.as_deref().filter(|i| !i.is_empty());
    if VERBOSE.load(Ordering::Relaxed) {
        if let Some(info) = info {
            message.push_str("\nTcl traceback:\n");
            message.push_str(info);
        }
    } else if info.is_some() {
        message.push_str("\n(-v shows the Tcl traceback)");
    }
    Failure::local(message)
}

/// How serve reports errors (see `prepare`). `::bgerror` is what comm calls
/// for a received script's error; by then `comm remoteid` is its sender.
const BGERROR: &str = r#"
proc ::bgerror {msg} {
    if {$::tclcomm::serve::quiet} return
    # remoteid is 0 for a sender that does not listen (tclcomm send).
    set from [expr {[catch {::comm::comm remoteid} id] || [string is integer -strict $id] && $id == 0
                    ? "a client" : "peer $id"}]
    set text "tclcomm serve: a script from $from raised an error (returned to the sender unless sent -async; serving goes on): $msg"
    if {$::tclcomm::serve::verbose} {append text "\n$::errorInfo"}
    catch {puts stderr $text}
}
interp bgerror {} [list apply {{msg options} {
    set text "tclcomm serve: background error in this interpreter: $msg"
    if {$::tclcomm::serve::verbose} {append text "\n[dict get $options -errorinfo]"}
    catch {puts stderr $text}
}}]
"#;

/// Output for attached consoles: `tclcomm attach` calls
/// `::tclcomm::serve::forward` (with no argument) and from then on what the
/// interpreter writes to stdout and stderr also goes to that console
/// (`comm send -async ID {tclcomm_output STREAM TEXT}`), through a channel
/// transform that passes the bytes on unchanged. A console whose
/// connection is gone is dropped. Unbuffered once forwarding, so each `puts`
/// arrives when written, in order with the results.
const FORWARD: &str = r#"
namespace eval ::tclcomm::serve {
    variable consoles {}
    variable pushed 0
}
proc ::tclcomm::serve::forward {} {
    variable consoles
    variable pushed
    set id [::comm::comm remoteid]
    if {$id ni $consoles} {lappend consoles $id}
    if {!$pushed} {
        set pushed 1
        foreach ch {stdout stderr} {
            chan push $ch [list ::tclcomm::serve::tee $ch [chan configure $ch -encoding]]
            chan configure $ch -buffering none
        }
    }
    return
}
proc ::tclcomm::serve::tee {ch enc cmd handle args} {
    switch -- $cmd {
        initialize {return {initialize finalize write}}
        write {
            variable consoles
            set data [lindex $args 0]
            set text [encoding convertfrom $enc $data]
            # Only over a connection that is still there: a console that
            # went away is dropped, never connected to again (a connect to a
            # vanished remote host would block this interpreter).
            set live [::comm::comm interps]
            foreach id $consoles {
                if {$id ni $live
                    || [catch {::comm::comm send -async $id [list tclcomm_output $ch $text]}]} {
                    set consoles [lsearch -all -inline -not -exact $consoles $id]
                }
            }
            return $data
        }
    }
    return
}
"#;

/// Sets the interpreter up: package, channel configuration, init scripts.
fn prepare(interp: Interp<'_>, args: &Args, verbose: u8) -> Result<String, Failure> {
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
    interp.eval_obj(&configure).map_err(|e| {
        let hint = e.result.contains("already in use").then(|| {
            format!(
                "Another program holds port {} (`ss -ltnp 'sport = :{}'` shows which); \
                 choose another --port, or leave it out for one the system assigns.",
                args.port, args.port
            )
        });
        tcl_failure_hint(&format!("cannot listen on port {}", args.port), &e, hint)
    })?;
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
    // each one as a background error (`bgerror`), which tclsh would print
    // as "background error" as if the server had failed. One line naming
    // the script's sender instead (with errorInfo under -v), or nothing
    // with --quiet-errors. Tcl's own background errors (a failing `after`
    // script, say) go to `interp bgerror` and say so. An init script may
    // define its own `bgerror`.
    let quiet = if args.quiet_errors { "1" } else { "0" };
    let verbose = if verbose > 0 { "1" } else { "0" };
    interp
        .eval_global(&format!(
            "namespace eval ::tclcomm::serve {{variable quiet {quiet}; variable verbose {verbose}}}\n{BGERROR}"
        ))
        .map_err(|e| tcl_failure("cannot set up bgerror", &e))?;
    interp
        .eval_global(FORWARD)
        .map_err(|e| tcl_failure("cannot set up output forwarding", &e))?;
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
    guard(interp, args)?;
    let id = interp
        .eval("::comm::comm self")
        .map_err(|e| tcl_failure("no id", &e))?;
    Ok(id.to_str().into_owned())
}

/// Where received scripts run and what may refuse them: authentication,
/// a safe or allow-list interpreter, a per-request check (after the init
/// scripts, which run in the serving interpreter).
fn guard(interp: Interp<'_>, args: &Args) -> Result<(), Failure> {
    if let Some(path) = args.auth.cookie_path() {
        let words = [
            "::comm::auth",
            "::comm::comm",
            "-cookie",
            &path.to_string_lossy(),
            "-required",
            if args.auth.required() { "1" } else { "0" },
        ];
        interp
            .eval_obj(&Obj::list_of(words))
            .map_err(|e| tcl_failure("cannot set up authentication", &e))?;
    } else if args.auth.required() {
        return Err(Failure::comm(
            "tclcomm serve: --auth-required needs a secret: set HOME or TCLCOMM_COOKIE, or give --cookie FILE",
        ));
    }
    if args.safe || !args.allow.is_empty() {
        let allow = Obj::list_of(args.allow.iter().map(String::as_str));
        let script = format!(
            "namespace eval ::tclcomm::serve {{
                 variable target [interp create -safe]
                 set allow {allow}
                 if {{[llength $allow]}} {{
                     # Only the given commands: every other one is hidden
                     # (comm then evaluates through invokehidden uplevel).
                     foreach c [interp eval $target {{info commands}}] {{
                         interp hide $target $c
                     }}
                     foreach c $allow {{
                         if {{[llength [info commands ::$c]] == 0}} {{
                             error \"--allow $c: no such command in the serving interpreter (define it with --init or --init-file)\"
                         }}
                         interp alias $target $c {{}} ::$c
                     }}
                 }}
                 ::comm::comm configure -interp $target
             }}",
            allow = text_word(&allow)
        );
        interp
            .eval_global(&script)
            .map_err(|e| tcl_failure("cannot set up the serving interpreter", &e))?;
    }
    if let Some(check) = &args.check {
        let script = format!(
            "namespace eval ::tclcomm::serve {{ variable check {} }}
             ::comm::comm hook eval {{
                 if {{[catch {{{{*}}$::tclcomm::serve::check $id [concat {{*}}$buffer]}} m]}} {{
                     error $m
                 }}
             }}",
            text_word(&Obj::string(check))
        );
        interp
            .eval_global(&script)
            .map_err(|e| tcl_failure("cannot set up --check", &e))?;
    }
    Ok(())
}

/// A value as one Tcl word.
fn text_word(o: &Obj) -> String {
    Obj::list_of([o.to_str().as_ref()]).to_str().into_owned()
}

/// Runs `tclcomm serve`.
pub(crate) fn run(args: Args, verbose: u8) -> Outcome {
    VERBOSE.store(verbose > 0, Ordering::Relaxed);
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

    let id = prepare(interp, &args, verbose)?;
    if let Some(name) = &args.name {
        let mut config = tclcomm::Config::new();
        config.auth = args.auth.config()?;
        crate::names::register(name.clone(), id.clone(), &args.names, config)?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{id}")
            .and_then(|()| out.flush())
            .map_err(|e| Failure::local(format!("tclcomm serve: cannot print the id: {e}")))?;
    }
    if std::io::stderr().is_terminal() {
        // For a person at a terminal; scripts read the id on stdout.
        eprintln!(
            "tclcomm serve: serving comm id {id} on {}; Ctrl-C stops.\n\
             Try: tclcomm send {id} info patchlevel   or   tclcomm attach {id}",
            if args.all_interfaces {
                "every interface"
            } else {
                "127.0.0.1 and ::1 only"
            }
        );
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
