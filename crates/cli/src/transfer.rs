//! `tclcomm transmit`, `tclcomm receive` and `tclcomm cp`: bulk data beside
//! comm.
//!
//! `transmit` and `receive` are the two ends of tcllib's
//! `transfer::transmitter`/`transfer::receiver` protocol (raw bytes, ended
//! by the close), each either waiting for its peer (`--listen`, tcllib's
//! passive mode) or connecting to it (`--connect`, active mode).
//!
//! `cp` copies a file into or out of a running Tcl application in one
//! command, as `scp` or `docker cp` do: comm carries a small script that
//! opens a one-shot listening socket in the application (plain Tcl: only
//! `socket` and `fcopy`, so the application needs nothing but comm), the
//! bytes go over that connection, and comm then reports how many bytes the
//! application wrote or read.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tclcomm::transfer::{self, Bind, Connector, Progress, Sink, Source, Stream, TransferError};
use tclcomm::{Channel, Config, Id, Script, TlsConfig, Transport};
use tokio::sync::watch;

use crate::send::{failure_of, parse_secs, runtime};
use crate::{EXIT_REMOTE, Failure, Outcome};

/// How the connection is made: exactly one of `--connect` and `--listen`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Peer {
    /// Connect to the peer (tcllib's active mode): HOST:PORT, [V6]:PORT or
    /// PORT (on 127.0.0.1).
    #[arg(long, value_name = "HOST:PORT")]
    connect: Option<String>,

    /// Wait for the peer on PORT (tcllib's passive mode; 0: any free port).
    /// The port is printed as the first line of stdout (of stderr when the
    /// data goes to stdout). Exactly one peer is accepted.
    #[arg(long, value_name = "PORT")]
    listen: Option<u16>,
}

/// Options shared by the three subcommands.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// Give up when the connection is not made within SECS, or when no data
    /// moves for SECS (exit 2). Default: wait as long as it takes.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<Duration>,

    /// With --listen: the address to listen on (default: all interfaces,
    /// as tcllib's passive mode).
    #[arg(long, value_name = "ADDR")]
    bind: Option<std::net::IpAddr>,

    /// TLS (the peer of `-socketcmd tls::socket`): this side's certificate
    /// chain (PEM). Needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,

    /// TLS: this side's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// TLS: the CA certificates the peer's certificate must chain to (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,

    /// TLS: the name to verify in the peer's certificate (default: the host
    /// connected to).
    #[arg(long, value_name = "NAME", requires = "tls_cert")]
    tls_name: Option<String>,

    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Arguments of `tclcomm transmit`.
#[derive(Debug, clap::Args)]
pub(crate) struct TransmitArgs {
    /// The file to send (`-`: standard input).
    file: PathBuf,
    #[command(flatten)]
    peer: Peer,
    #[command(flatten)]
    common: Common,
}

/// Arguments of `tclcomm receive`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReceiveArgs {
    /// The file to write (`-`: standard output).
    file: PathBuf,
    #[command(flatten)]
    peer: Peer,
    #[command(flatten)]
    common: Common,
}

/// Arguments of `tclcomm cp`.
#[derive(Debug, clap::Args)]
pub(crate) struct CpArgs {
    /// What to copy: a local file (`-`: standard input), or ID:PATH in the
    /// application with comm id ID (PORT, HOST:PORT or [V6]:PORT).
    #[arg(value_name = "SRC")]
    src: String,

    /// Where to: ID:PATH or a local path (`-`: standard output). A
    /// directory receives the file under the source's name. Exactly one of
    /// SRC and DEST is remote. A local path with a colon: write it as ./PATH.
    #[arg(value_name = "DEST")]
    dest: String,

    /// With TLS: the socket command the application uses for the transfer
    /// connection (default: tls::socket with TLS, else ::socket).
    #[arg(long, value_name = "CMD")]
    remote_socketcmd: Option<String>,

    #[command(flatten)]
    common: Common,
}

impl Common {
    fn transport(&self) -> Result<Transport, Failure> {
        let Some(cert) = &self.tls_cert else {
            return Ok(Transport::Tcp);
        };
        let read = |p: &Option<PathBuf>| -> Result<Vec<u8>, Failure> {
            let p = p.as_ref().ok_or_else(|| {
                Failure::comm("tclcomm: TLS needs --tls-cert, --tls-key and --tls-ca")
            })?;
            std::fs::read(p)
                .map_err(|e| Failure::local(format!("tclcomm: cannot read {}: {e}", p.display())))
        };
        let mut tls = TlsConfig::from_pem(
            &read(&Some(cert.clone()))?,
            &read(&self.tls_key)?,
            &read(&self.tls_ca)?,
        )
        .map_err(|e| Failure::local(format!("tclcomm: {e}")))?;
        if let Some(name) = &self.tls_name {
            tls = tls.with_server_name(name.clone());
        }
        Ok(Transport::Tls(Arc::new(tls)))
    }
}

/// Splits HOST:PORT, [V6]:PORT or PORT.
fn host_port(text: &str) -> Result<(String, u16), Failure> {
    let bad = || Failure::comm(format!("tclcomm: \"{text}\" is not HOST:PORT or PORT"));
    let (host, port) = match text.rsplit_once(':') {
        None => ("127.0.0.1", text),
        Some((h, p)) if h.starts_with('[') && h.ends_with(']') => (&h[1..h.len() - 1], p),
        Some((h, _)) if h.contains(':') => return Err(bad()),
        Some((h, p)) => (h, p),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// What failed and where (the error's text), and what to try.
fn failure(e: TransferError) -> Failure {
    let mut message = format!("tclcomm: {e}");
    let hint = match &e {
        TransferError::Connect { .. } => Some(
            "Is the peer waiting (tcllib's passive mode, or `tclcomm receive --listen PORT`), \
             and is this its address? Start the listening side first.",
        ),
        TransferError::Listen { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
            Some("Another program holds that port: choose another, or 0 for any free port.")
        }
        TransferError::Timeout(_) => Some("Raise --timeout, or check that the other side started."),
        _ => None,
    };
    if let Some(hint) = hint {
        message.push('\n');
        message.push_str(hint);
    }
    if e.is_local() {
        Failure::local(message)
    } else {
        Failure::comm(message)
    }
}

/// A progress bar on stderr when it is a terminal.
fn bar(quiet: bool, len: Option<u64>) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let style = match len {
        Some(_) => indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ),
        None => indicatif::ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec}"),
    }
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let b = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    b.set_style(style);
    Some(b)
}

/// Runs one transfer, with the progress bar fed and the inactivity
/// timeout enforced from the progress reports.
async fn supervise<F>(
    work: F,
    seen: watch::Receiver<u64>,
    timeout: Option<Duration>,
    bar: Option<indicatif::ProgressBar>,
) -> Result<u64, Failure>
where
    F: std::future::Future<Output = Result<u64, TransferError>>,
{
    let mut seen = seen;
    tokio::pin!(work);
    let result = loop {
        let tick = async {
            match timeout {
                Some(t) => tokio::time::timeout(t, seen.changed()).await.is_ok(),
                None => {
                    let _ = seen.changed().await;
                    true
                }
            }
        };
        tokio::select! {
            r = &mut work => break r.map_err(failure),
            alive = tick => {
                if let Some(b) = &bar {
                    b.set_position(*seen.borrow());
                }
                if !alive {
                    break Err(Failure::comm(format!(
                        "tclcomm: no data moved for {:?}",
                        timeout.unwrap_or_default()
                    )));
                }
            }
        }
    };
    if let Some(b) = bar {
        if let Ok(n) = &result {
            b.set_position(*n);
        }
        b.finish_and_clear();
    }
    result
}

/// Opens the connection as `--connect`/`--listen` say; a listening side
/// announces its port with `announce`.
async fn open(
    peer: &Peer,
    common: &Common,
    announce: impl FnOnce(u16) -> Result<(), Failure>,
) -> Result<Stream, Failure> {
    let transport = common.transport()?;
    let connector = match (&peer.connect, peer.listen) {
        (Some(addr), _) => {
            let (host, port) = host_port(addr)?;
            Connector::active(host, port)
        }
        (None, Some(port)) => {
            Connector::passive(port).bind(common.bind.map(Bind::Addr).unwrap_or(Bind::Any))
        }
        (None, None) => return Err(Failure::comm("tclcomm: give --connect or --listen")),
    };
    let mut connector = connector.transport(transport);
    if let Some(t) = common.timeout {
        connector = connector.timeout(t);
    }
    if connector.is_passive() {
        let l = connector.listen().await.map_err(failure)?;
        announce(l.port())?;
        l.accept().await.map_err(failure)
    } else {
        connector.connect().await.map_err(failure)
    }
}

fn say_port(to_stderr: bool) -> impl FnOnce(u16) -> Result<(), Failure> {
    move |port| {
        use std::io::Write;
        let r = if to_stderr {
            writeln!(std::io::stderr(), "{port}")
        } else {
            let mut o = std::io::stdout().lock();
            writeln!(o, "{port}").and_then(|()| o.flush())
        };
        r.map_err(|e| Failure::local(format!("tclcomm: cannot print the port: {e}")))
    }
}

fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// Runs `tclcomm transmit`.
pub(crate) fn run_transmit(args: TransmitArgs) -> Outcome {
    let rt = runtime()?;
    rt.block_on(async {
        let len = if is_dash(&args.file) {
            None
        } else {
            Some(
                std::fs::metadata(&args.file)
                    .map_err(|e| Failure::local(format!("tclcomm: {}: {e}", args.file.display())))?
                    .len(),
            )
        };
        let stream = open(&args.peer, &args.common, say_port(false)).await?;
        let (progress, seen) = Progress::watch();
        let bar = bar(args.common.quiet, len);
        let mut stdin = tokio::io::stdin();
        let source = if is_dash(&args.file) {
            Source::Reader(&mut stdin)
        } else {
            Source::File(&args.file)
        };
        supervise(
            transfer::transmit(stream, source, progress),
            seen,
            args.common.timeout,
            bar,
        )
        .await
        .map(|_| ())
    })
}

/// Runs `tclcomm receive`.
pub(crate) fn run_receive(args: ReceiveArgs) -> Outcome {
    let rt = runtime()?;
    rt.block_on(async {
        let to_stdout = is_dash(&args.file);
        let stream = open(&args.peer, &args.common, say_port(to_stdout)).await?;
        let (progress, seen) = Progress::watch();
        let bar = bar(args.common.quiet, None);
        let mut stdout = tokio::io::stdout();
        let sink = if to_stdout {
            Sink::Writer(&mut stdout)
        } else {
            Sink::File(&args.file)
        };
        supervise(
            transfer::receive(stream, sink, progress),
            seen,
            args.common.timeout,
            bar,
        )
        .await
        .map(|_| ())
    })
}

/// One side of `cp`.
#[derive(Debug, PartialEq)]
enum Place {
    Local(PathBuf),
    Remote { id: Id, host: String, path: String },
}

/// Reads `ID:PATH` (ID: PORT, HOST:PORT, [V6]:PORT) or a local path. A
/// path starting with `/` or `.`, or `-`, is always local.
fn place(text: &str) -> Result<Place, Failure> {
    if text == "-" || text.starts_with('/') || text.starts_with('.') {
        return Ok(Place::Local(text.into()));
    }
    let (id_text, path) = if text.starts_with('[') {
        match text.find("]:").and_then(|i| {
            let rest = &text[i + 2..];
            rest.split_once(':')
                .map(|(p, path)| (i + 2 + p.len(), path))
        }) {
            Some((end, path)) => (&text[..end], path),
            None => return Ok(Place::Local(text.into())),
        }
    } else {
        let mut parts = text.splitn(3, ':');
        let a = parts.next().unwrap_or_default();
        let b = parts.next();
        let c = parts.next();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match (b, c) {
            (Some(b), Some(c)) if digits(b) && !digits(a) => (&text[..a.len() + 1 + b.len()], c),
            (Some(_), _) if digits(a) => (a, &text[a.len() + 1..]),
            _ => return Ok(Place::Local(text.into())),
        }
    };
    if path.is_empty() {
        return Err(Failure::comm(format!(
            "tclcomm: \"{text}\": no path after the id"
        )));
    }
    let id = crate::id::parse_id(id_text).map_err(|e| Failure::comm(format!("tclcomm: {e}")))?;
    let host = id.host();
    Ok(Place::Remote {
        id,
        host,
        path: path.to_string(),
    })
}

/// The script run in the application (plain Tcl and comm): a one-shot
/// listener per copy, fcopy, and a status to ask for afterwards. A listener
/// nobody connects to is closed after `wait` ms.
const REMOTE: &str = r#"
namespace eval ::tclcomm_cp {
    variable n
    if {![info exists n]} {set n 0}
    proc open_ {dir path name socketcmd host wait} {
        variable n
        variable st
        if {$dir eq "put" && [file isdirectory $path]} {set path [file join $path $name]}
        set f [open $path [expr {$dir eq "put" ? "w" : "r"}]]
        fconfigure $f -translation binary
        set size [expr {$dir eq "get" ? [file size $path] : -1}]
        set id [incr n]
        if {[catch {
            set srv [$socketcmd -server [list ::tclcomm_cp::accepted $id] -myaddr $host 0]
        } msg]} {
            close $f
            return -code error $msg
        }
        set st($id) [list waiting 0 {} $dir $f $srv [after $wait [list ::tclcomm_cp::finish $id 0 "nobody connected"]]]
        return [list $id [lindex [fconfigure $srv -sockname] 2] $size]
    }
    proc accepted {id sock args} {
        variable st
        lassign $st($id) state count err dir f srv timer
        catch {close $srv}
        after cancel $timer
        fconfigure $sock -translation binary -blocking 0
        set st($id) [list running 0 {} $dir $f {} {} $sock]
        if {$dir eq "put"} {
            fcopy $sock $f -command [list ::tclcomm_cp::finish $id]
        } else {
            fcopy $f $sock -command [list ::tclcomm_cp::finish $id]
        }
    }
    proc finish {id count {err {}}} {
        variable st
        lassign $st($id) state _ _ dir f srv timer sock
        catch {close $f}
        if {$srv ne ""} {catch {close $srv}}
        if {$sock ne ""} {catch {close $sock}}
        set st($id) [list done $count $err]
    }
    proc status {id} {
        variable st
        if {![info exists st($id)]} {return -code error "no such copy: $id"}
        set s [lrange $st($id) 0 2]
        if {[lindex $s 0] eq "done"} {unset st($id)}
        return $s
    }
}
"#;

/// Runs `tclcomm cp`.
pub(crate) fn run_cp(args: CpArgs, verbose: u8) -> Outcome {
    let (src, dest) = (place(&args.src)?, place(&args.dest)?);
    let (dir, local, id, host, path, name) = match (src, dest) {
        (Place::Local(l), Place::Remote { id, host, path }) => {
            let name = l
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "stdin".into());
            ("put", l, id, host, path, name)
        }
        (Place::Remote { id, host, path }, Place::Local(l)) => {
            let name = path.rsplit('/').next().unwrap_or(&path).to_string();
            ("get", l, id, host, path, name)
        }
        (Place::Local(_), Place::Local(_)) => {
            return Err(Failure::comm(
                "tclcomm: neither SRC nor DEST is ID:PATH in a Tcl application",
            ));
        }
        _ => {
            return Err(Failure::comm(
                "tclcomm: only one of SRC and DEST can be remote",
            ));
        }
    };
    let transport = args.common.transport()?;
    let tls = matches!(transport, Transport::Tls(_));
    let socketcmd = args
        .remote_socketcmd
        .clone()
        .unwrap_or_else(|| if tls { "tls::socket" } else { "::socket" }.to_string());
    // A local directory receives the file under the remote name.
    let local = if dir == "get" && local.is_dir() {
        local.join(&name)
    } else {
        local
    };
    let timeout = args.common.timeout;
    let rt = runtime()?;
    rt.block_on(async {
        let channel = Channel::new(Config::new().transport(transport.clone()))
            .await
            .map_err(|e| Failure::local(format!("tclcomm: cannot create a channel: {e}")))?;
        let send = |script: Script| {
            let (channel, id) = (&channel, id.clone());
            async move {
                match timeout {
                    Some(t) => channel.send_timeout(id.clone(), script, t).await,
                    None => channel.send(id.clone(), script).await,
                }
                .map_err(|e| failure_of(&e, &id, verbose > 0))
            }
        };
        let wait_ms = timeout
            .unwrap_or(Duration::from_secs(60))
            .as_millis()
            .to_string();
        let call = tclcomm_wire::list::format_list([
            "::tclcomm_cp::open_",
            dir,
            path.as_str(),
            name.as_str(),
            socketcmd.as_str(),
            host.as_str(),
            wait_ms.as_str(),
        ]);
        let reply = send(Script::words([format!("{REMOTE}\n{call}")])).await?;
        let words: Vec<&str> = reply.split_whitespace().collect();
        let (copy, port, size) = match words.as_slice() {
            [c, p, s] => (c.to_string(), p.parse::<u16>().ok(), s.parse::<i64>().ok()),
            _ => (String::new(), None, None),
        };
        let (Some(port), Some(size)) = (port, size) else {
            return Err(Failure::comm(format!(
                "tclcomm: unexpected answer from the application: {reply:?}"
            )));
        };
        let mut connector = Connector::active(host.clone(), port).transport(transport);
        if let Some(t) = timeout {
            connector = connector.timeout(t);
        }
        let stream = connector.connect().await.map_err(failure)?;
        let (progress, seen) = Progress::watch();
        let moved = if dir == "put" {
            let len = if is_dash(&local) {
                None
            } else {
                std::fs::metadata(&local).ok().map(|m| m.len())
            };
            let bar = bar(args.common.quiet, len);
            let mut stdin = tokio::io::stdin();
            let source = if is_dash(&local) {
                Source::Reader(&mut stdin)
            } else {
                Source::File(&local)
            };
            supervise(
                transfer::transmit(stream, source, progress),
                seen,
                timeout,
                bar,
            )
            .await?
        } else {
            let bar = bar(args.common.quiet, u64::try_from(size).ok());
            let mut stdout = tokio::io::stdout();
            let sink = if is_dash(&local) {
                Sink::Writer(&mut stdout)
            } else {
                Sink::File(&local)
            };
            supervise(
                transfer::receive(stream, sink, progress),
                seen,
                timeout,
                bar,
            )
            .await?
        };
        // What the application says it wrote or read: polled, bounded.
        let status = Script::command(["::tclcomm_cp::status", copy.as_str()]);
        let limit = timeout.unwrap_or(Duration::from_secs(60));
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(2);
        let (count, err) = loop {
            let s = send(status.clone()).await?;
            let words = tclcomm_wire::list::parse_list(&s).unwrap_or_default();
            if words.first().map(String::as_str) == Some("done") {
                let count = words
                    .get(1)
                    .and_then(|c| c.parse::<u64>().ok())
                    .unwrap_or(0);
                break (count, words.get(2).cloned().unwrap_or_default());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::comm(format!(
                    "tclcomm: the application did not finish the copy within {limit:?}"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        };
        channel.destroy();
        if !err.is_empty() {
            return Err(Failure {
                code: EXIT_REMOTE,
                message: format!("tclcomm: in the application: {err}"),
            });
        }
        if count != moved {
            return Err(Failure::comm(format!(
                "tclcomm: {moved} bytes moved here, {count} in the application: copy incomplete"
            )));
        }
        Ok(())
    })
}

/// A reader of `left` bytes of a fixed pattern, without holding them: the
/// benchmark's data, so that memory stays flat whatever the size.
struct Pattern {
    left: u64,
    block: Vec<u8>,
}

impl Pattern {
    fn new(size: u64) -> Pattern {
        Pattern {
            left: size,
            block: (0..256 * 1024).map(|i| (i * 7 + i / 256) as u8).collect(),
        }
    }
}

impl tokio::io::AsyncRead for Pattern {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64)
            .min(self.left)
            .min(self.block.len() as u64) as usize;
        buf.put_slice(&self.block[..n]);
        self.left -= n as u64;
        std::task::Poll::Ready(Ok(()))
    }
}

/// The peak resident memory of this process so far (VmHWM), in MB.
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Plain TCP: the same loop as `transmit` (256 KiB reads, write_all) on a
/// bare socket, received into a 256 KiB buffer and dropped.
async fn plain_copy(size: u64) -> std::io::Result<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    let start = std::time::Instant::now();
    let rx = tokio::spawn(async move {
        let (mut s, _) = l.accept().await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok::<u64, std::io::Error>(total)
    });
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let mut src = Pattern::new(size);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await?;
    }
    s.shutdown().await?;
    let got = rx.await.map_err(std::io::Error::other)??;
    if got != size {
        return Err(std::io::Error::other(format!(
            "plain copy: {got} of {size} bytes"
        )));
    }
    Ok(start.elapsed())
}

/// The same bytes through `Connector` + `transmit`/`receive` (progress on).
async fn transfer_copy(size: u64) -> Result<Duration, TransferError> {
    let l = Connector::passive(0).loopback().listen().await?;
    let port = l.port();
    let start = std::time::Instant::now();
    let rx = tokio::spawn(async move {
        let s = l.accept().await?;
        let (progress, _seen) = Progress::watch();
        let mut sink = tokio::io::sink();
        transfer::receive(s, Sink::Writer(&mut sink), progress).await
    });
    let s = Connector::active("127.0.0.1", port).connect().await?;
    let (progress, _seen) = Progress::watch();
    let mut src = Pattern::new(size);
    transfer::transmit(s, Source::Reader(&mut src), progress).await?;
    let got = rx
        .await
        .map_err(|e| TransferError::Local(std::io::Error::other(e)))??;
    if got != size {
        return Err(TransferError::Local(std::io::Error::other(format!(
            "transfer: {got} of {size} bytes"
        ))));
    }
    Ok(start.elapsed())
}

/// `tclcomm bench --transfer MB`: the transfer connection against plain
/// TCP (best of 3 runs each, alternated), and peak memory after a quarter
/// of the size and after the full size (flat when the data is streamed).
pub(crate) fn bench(mb: u64) -> Outcome {
    if mb == 0 {
        return Err(Failure::comm("tclcomm: --transfer needs a size above 0 MB"));
    }
    let size = mb << 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("tclcomm: cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let fail = |e: String| Failure::local(format!("tclcomm: bench: {e}"));
        let before = peak_mb();
        transfer_copy((size / 4).max(1))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let quarter = peak_mb();
        let (mut plain, mut ours) = (Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            plain = plain.min(plain_copy(size).await.map_err(|e| fail(e.to_string()))?);
            ours = ours.min(transfer_copy(size).await.map_err(|e| fail(e.to_string()))?);
        }
        let full = peak_mb();
        let rate = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
        let mem = |m: Option<f64>| m.map_or("?".to_string(), |m| format!("{m:.1} MB"));
        println!("| workload | plain TCP | transfer connection | ratio |");
        println!("|---|---:|---:|---:|");
        println!(
            "| {mb} MB over loopback (best of 3) | {:.3} s ({:.0} MB/s) | {:.3} s ({:.0} MB/s) | {:.2}× |",
            plain.as_secs_f64(),
            rate(plain),
            ours.as_secs_f64(),
            rate(ours),
            plain.as_secs_f64() / ours.as_secs_f64()
        );
        println!(
            "peak memory (VmHWM): at start {}, after {} MB {}, after {mb} MB {}",
            mem(before),
            mb / 4,
            mem(quarter),
            mem(full)
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::{Place, host_port, place};

    #[test]
    fn places() {
        let remote = |t: &str| match place(t) {
            Ok(Place::Remote { id, host, path }) => Some((id.to_string(), host, path)),
            _ => None,
        };
        assert_eq!(
            remote("4500:/tmp/x"),
            Some(("4500".into(), "127.0.0.1".into(), "/tmp/x".into()))
        );
        assert_eq!(
            remote("localhost:4500:x:y"),
            Some(("4500 localhost".into(), "localhost".into(), "x:y".into()))
        );
        assert_eq!(
            remote("[::1]:4500:/tmp/x"),
            Some(("4500 ::1".into(), "::1".into(), "/tmp/x".into()))
        );
        for local in ["/tmp/x", "./4500:x", "file", "a:b", "-", "..:1:x"] {
            assert_eq!(
                place(local).ok(),
                Some(Place::Local(local.into())),
                "{local}"
            );
        }
        assert!(place("4500:").is_err());
        assert!(place("0:/x").is_err());
    }

    #[test]
    fn host_ports() {
        assert_eq!(host_port("4500").ok(), Some(("127.0.0.1".into(), 4500)));
        assert_eq!(host_port("h:4500").ok(), Some(("h".into(), 4500)));
        assert_eq!(host_port("[::1]:4500").ok(), Some(("::1".into(), 4500)));
        for bad in ["", "x", "h:", ":1", "::1:4500", "h:0", "h:70000"] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }
}
