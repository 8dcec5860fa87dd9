//! `tclcomm send`: one `comm send` from the shell.

use std::io::{Read, Write};
use std::time::Duration;

use tclcomm::{Channel, Config, Error, Id, Script};

use crate::{EXIT_REMOTE, Failure, Outcome};

/// Arguments of `tclcomm send`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Send without waiting for an answer (`send -async`); prints nothing.
    /// Returns once the message is written, after a pause of 200 ms that
    /// lets a tcllib peer read it before the connection closes (tcllib drops
    /// data that arrives together with the close).
    #[arg(long = "async")]
    asynchronous: bool,

    /// Give up after this many seconds without an answer (exit 2). Default:
    /// wait as long as it takes, as comm does.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<Duration>,

    #[command(flatten)]
    tls: crate::tls::TlsArgs,

    /// The peer: PORT (on 127.0.0.1), HOST:PORT, comm's "PORT HOST", or a
    /// NAME bound at the name server (see --names).
    #[arg(value_name = "ID|NAME")]
    target: String,

    #[command(flatten)]
    names: crate::names::NamesArg,

    /// The script's fragments; `-` stands for all of standard input.
    #[arg(value_name = "WORD", required = true, num_args = 1.., allow_hyphen_values = true)]
    words: Vec<String>,

    #[command(flatten)]
    auth: crate::auth::AuthArgs,
}

/// Parses a positive number of seconds (fractions allowed).
pub(crate) fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("the timeout must be positive, not {text}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Reads standard input as UTF-8, or explains why it is not.
pub(crate) fn read_stdin() -> Result<String, Failure> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::local(format!("tclcomm: cannot read standard input: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::comm(format!(
            "tclcomm: standard input is not UTF-8 (invalid byte at offset {}); comm carries text: \
             encode binary data first (e.g. base64, then `binary decode base64` on the peer)",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Replaces the `-` word (at most one) by standard input.
fn fragments(words: Vec<String>) -> Result<Vec<String>, Failure> {
    if words.iter().filter(|w| *w == "-").count() > 1 {
        return Err(Failure::comm(
            "tclcomm: standard input (`-`) can be used only once",
        ));
    }
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        if w == "-" {
            out.push(read_stdin()?);
        } else {
            out.push(w);
        }
    }
    Ok(out)
}

/// A single-threaded tokio runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("tclcomm: cannot start the runtime: {e}")))
}

/// Where `id` points, for messages: `4500` is "127.0.0.1 port 4500".
pub(crate) fn place(id: &Id) -> String {
    let host = id.host();
    if host.contains(':') {
        format!("[{host}]:{}", id.port_text())
    } else {
        format!("{host}:{}", id.port_text())
    }
}

/// How a failed send to `id` is reported: what failed, where, and what to
/// try (the message for stderr), and the exit code. Tcl's errorInfo only
/// when `verbose`.
pub(crate) fn failure_of(e: &Error, id: &Id, verbose: bool) -> Failure {
    let at = place(id);
    match e {
        Error::Remote(r) => {
            let mut message = r.message.clone();
            if verbose {
                message.push_str(&format!(
                    "\nerrorCode: {}\nerrorInfo:\n{}",
                    r.errorcode, r.errorinfo
                ));
            }
            Failure {
                code: EXIT_REMOTE,
                message,
            }
        }
        Error::Connect(why) => {
            let hint = if why.contains("refused") {
                format!(
                    "Nothing listens on {at}: is the comm peer running, and is {} its id \
                     (`::comm::comm self` there)? Start one with `tclcomm serve`.",
                    id.port_text()
                )
            } else if why.contains("not known")
                || why.contains("resolve")
                || why.contains("nodename")
                || why.contains("No address")
            {
                format!("Check the host name \"{}\".", id.host())
            } else if why.contains("timed out") || why.contains("unreachable") {
                "Check the host and that no firewall is in the way; a comm peer listens on \
                 127.0.0.1 only unless started with `-local 0` (`serve --all-interfaces`)."
                    .to_string()
            } else {
                "Check the id: PORT, HOST:PORT, [IPV6]:PORT or \"PORT HOST\".".to_string()
            };
            Failure::comm(format!(
                "tclcomm: cannot connect to {id} ({at}): {why}\n{hint}"
            ))
        }
        Error::Lost(reason) => {
            let hint = if reason.contains("died") {
                format!(
                    "The peer closed the connection without an answer: it exited, dropped us \
                     (a limit, or a handshake it refused), or {at} is not a comm peer at all."
                )
            } else if reason.contains("protocol") || reason.contains("handshake") {
                format!("{at} does not speak comm: check the port.")
            } else {
                "Send again if the peer is still running.".to_string()
            };
            Failure::comm(format!(
                "tclcomm: connection to {id} ({at}) lost before the answer: {reason}\n{hint}"
            ))
        }
        Error::Timeout { timeout, .. } => Failure::comm(format!(
            "tclcomm: no answer from {id} ({at}) within {}s\n\
             The script may still be running there (its answer is dropped). Raise --timeout, or \
             check that the peer runs its event loop (comm answers from vwait, update or Tk).",
            timeout.as_secs_f64()
        )),
        other => Failure::comm(format!("tclcomm: sending to {id} ({at}) failed: {other}")),
    }
}

/// Runs `tclcomm send`.
pub(crate) fn run(args: Args, verbose: u8) -> Outcome {
    let script = Script::words(fragments(args.words)?);
    let rt = runtime()?;
    rt.block_on(async {
        let mut config = Config::new().transport(args.tls.transport()?);
        config.auth = args.auth.config()?;
        let id = crate::names::resolve_target(&args.target, &args.names, config.clone()).await?;
        let channel = Channel::new(config)
            .await
            .map_err(|e| Failure::local(format!("tclcomm: cannot create a channel: {e}")))?;
        if args.asynchronous {
            let size: usize = script.0.iter().map(String::len).sum();
            channel
                .send_async(id.clone(), script)
                .await
                .map_err(|e| failure_of(&e, &id, verbose > 0))?;
            flush(&channel, &id, size).await;
            return Ok(());
        }
        let result = match args.timeout {
            Some(t) => channel.send_timeout(id.clone(), script, t).await,
            None => channel.send(id.clone(), script).await,
        };
        let result = result.map_err(|e| failure_of(&e, &id, verbose > 0))?;
        let mut out = std::io::stdout().lock();
        out.write_all(result.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(|e| Failure::local(format!("tclcomm: cannot write the result: {e}")))?;
        channel.destroy();
        Ok(())
    })
}

/// Waits until what was queued for `id` has left: closing the connection
/// lets its writer drain the queue and finish, and then the runtime has no
/// task left. Bounded, in case the peer stops reading.
///
/// The close waits a moment first: tcllib discards the data it reads
/// together with the end of a connection (spec §11), so a message followed
/// at once by the close would be lost; the pause (200 ms, plus time to
/// write the payload at 50 MB/s) lets an idle peer read it first.
async fn flush(channel: &Channel, id: &Id, size: usize) {
    let pause = Duration::from_millis(200) + Duration::from_secs_f64(size as f64 / 50e6);
    tokio::time::sleep(pause).await;
    channel.shutdown(id.clone());
    let handle = tokio::runtime::Handle::current();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while handle.metrics().num_alive_tasks() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
