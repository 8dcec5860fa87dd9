//! `tclcomm`: the command line of tclcomm.
//!
//! - `tclcomm serve`: a comm channel whose received scripts run in an
//!   embedded Tcl interpreter.
//! - `tclcomm send ID WORD...`: `::comm::comm send` from the shell.
//! - `tclcomm attach ID`: an interactive console to a remote interpreter.
//! - `tclcomm names ...`: an nns name server (`serve`) and its client
//!   (`bind`, `search`, `list`, `resolve`, `watch`); `send` and `attach`
//!   accept a name where an id is expected.
//! - `tclcomm bench`: tcllib comm, our comm and a plain TCP ping-pong side
//!   by side.
//! - `tclcomm tcl-package DIR`: lays out our Tcl package.
//! - `tclcomm completions SHELL`, `tclcomm man`: generated from the clap
//!   definitions below.
//!
//! Exit codes are listed in [`EXIT_CODES`] and shown by `--help`.

mod attach;
mod auth;
mod bench;
mod docs;
mod id;
mod names;
mod send;
mod serve;
mod tcl_package;
mod tls;
mod transfer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the remote script raised an error (or ended with break, continue or
     another exceptional code); the message is on stderr
  2  usage error (bad arguments, a malformed ID, stdin not UTF-8), or a
     communication failure: cannot connect, no answer within --timeout,
     connection lost
  3  a local failure: cannot listen, Tcl could not be set up, a file could
     not be written, a --library that is not the package's";

/// Success.
pub(crate) const EXIT_OK: u8 = 0;
/// The remote script failed.
pub(crate) const EXIT_REMOTE: u8 = 1;
/// Usage error or communication failure.
pub(crate) const EXIT_COMM: u8 = 2;
/// Local failure.
pub(crate) const EXIT_LOCAL: u8 = 3;

/// A failure that ends the program with a message and an exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The exit code.
    pub(crate) code: u8,
    /// What to print on stderr (one or more lines, no trailing newline).
    pub(crate) message: String,
}

impl Failure {
    /// A usage or communication failure (exit 2).
    pub(crate) fn comm(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_COMM,
            message: message.into(),
        }
    }

    /// A local failure (exit 3).
    pub(crate) fn local(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_LOCAL,
            message: message.into(),
        }
    }
}

/// The result of a subcommand.
pub(crate) type Outcome = Result<(), Failure>;

#[derive(Debug, Parser)]
#[command(
    name = "tclcomm",
    version,
    about = "Talk to Tcl applications over tcllib's comm protocol, or serve a Tcl interpreter over it",
    after_help = EXIT_CODES,
    propagate_version = true
)]
struct Cli {
    /// More output on stderr: -v shows a remote error's errorInfo and
    /// errorCode and informational logs, -vv debug logs, -vvv traces
    /// (RUST_LOG overrides the log level).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve an embedded Tcl interpreter over comm until SIGINT or SIGTERM.
    ///
    /// Prints the channel's id as the first line of stdout. Received
    /// scripts run in the interpreter, where our `comm` package is loaded
    /// and the serving channel is `::comm::comm`. The interpreter is Tcl
    /// 8.6 (libtcl8.6, linked in); for Tcl 9, load the package into
    /// tclsh9.0 (`tcl-package`).
    #[command(after_help = EXIT_CODES)]
    Serve(serve::Args),
    /// Send a script to a comm peer and print its result (`comm send`).
    ///
    /// The WORDs are the script's fragments, joined by the receiver with
    /// Tcl's `concat` as comm does (double evaluation: `send ID set b
    /// {hello world}` runs `set b hello world`). Quote the whole script as
    /// one WORD to avoid that. A WORD of `-` is replaced by all of standard
    /// input, which must be UTF-8 (any character, NUL included).
    #[command(after_help = EXIT_CODES)]
    Send(send::Args),
    /// An interactive console to a remote interpreter (as tkcon's attach).
    ///
    /// Each complete command (as tclsh judges it: an incomplete line, or one
    /// ending in a backslash, continues on the next with a `> ` prompt) is
    /// sent as one fragment; results are printed on stdout, errors on
    /// stderr prefixed `error: `. `exit`, end of input or Ctrl-D ends;
    /// Ctrl-C drops the current input. Without a terminal, lines are read
    /// from standard input.
    ///
    /// Keys: Up/Down walk the history (a multi-line command is one entry);
    /// Tab completes commands, procs, namespaces and $variables, asked of
    /// the remote interpreter.
    ///
    /// Output: where the peer is `tclcomm serve`, what its scripts write to
    /// stdout and stderr (`puts`) is shown here too. Any other peer (tclsh,
    /// wish, an application) prints on its own terminal only: make the
    /// value the command's result to see it here.
    #[command(after_help = EXIT_CODES)]
    Attach(attach::Args),
    /// Names instead of port numbers: an nns name server and its client.
    ///
    /// Compatible with tcllib's nns (nnsd, nameserv, nameserv::auto).
    /// `send` and `attach` accept a NAME bound there wherever an ID
    /// goes, and `serve --name NAME` registers itself.
    #[command(after_help = EXIT_CODES)]
    Names(names::Args),
    /// Benchmark tcllib comm, our comm (Rust and in tclsh) and plain TCP side by side.
    ///
    /// Prints a table of rates and ratios and writes bench.md and bench.svg
    /// into --out.
    #[command(after_help = EXIT_CODES)]
    Bench(bench::Args),
    /// Lay out our Tcl `comm` package (pkgIndex.tcl, libcomm.so for Tcl 8.6,
    /// libtcl9comm.so for Tcl 9) under DIR.
    ///
    /// The libraries are carried inside this binary, so this works from any
    /// directory. Afterwards `TCLLIBPATH=DIR tclsh` (or tclsh9.0, or
    /// `lappend auto_path DIR` in a script) and `package require comm` load
    /// the one for the running Tcl. The Tcl 9 library is carried when the
    /// binary was built with Tcl 9 available (TCL9_PREFIX); the output says
    /// which versions were laid out.
    #[command(name = "tcl-package", after_help = EXIT_CODES)]
    TclPackage(tcl_package::Args),
    /// Send a file to a peer over a transfer connection (tcllib's transfer::transmitter).
    #[command(after_help = EXIT_CODES)]
    Transmit(transfer::TransmitArgs),
    /// Receive a file from a peer over a transfer connection (tcllib's transfer::receiver).
    #[command(after_help = EXIT_CODES)]
    Receive(transfer::ReceiveArgs),
    /// Copy a file into or out of a running Tcl application: `cp FILE ID:PATH`, `cp ID:PATH FILE`.
    #[command(after_help = EXIT_CODES)]
    Cp(transfer::CpArgs),
    /// Print shell completions for tclcomm (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the tclcomm(1) manual page (roff), or write one page per subcommand.
    Man(docs::ManArgs),
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args, cli.verbose),
        Command::Send(args) => send::run(args, cli.verbose),
        Command::Attach(args) => attach::run(args),
        Command::Names(args) => names::run(args),
        Command::Bench(args) => bench::run(args),
        Command::TclPackage(args) => tcl_package::run(args),
        Command::Transmit(args) => transfer::run_transmit(args),
        Command::Receive(args) => transfer::run_receive(args),
        Command::Cp(args) => transfer::run_cp(args, cli.verbose),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    };
    match outcome {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("{}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
