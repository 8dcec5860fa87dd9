//! `tclcomm names ...`: an nns name server and its client from the shell
//! (tcllib's `nnsd` and `nns` apps, compatible with them), and the
//! resolution of a name typed where an id is expected (`send`, `attach`).

use std::io::Write;
use std::time::Duration;

use clap::Subcommand;
use tclcomm::names::{self, Client, Event, ResolveError, Server};
use tclcomm::{Config, Id};

use crate::{Failure, Outcome};

/// Where the name server is, for commands that look names up.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NamesArg {
    /// The name server to look names up at: HOST:PORT, PORT or "PORT HOST"
    /// (default: $TCLCOMM_NAMES, else port 38573 on 127.0.0.1, nns's own).
    #[arg(long = "names", value_name = "HOST:PORT")]
    names: Option<String>,
}

impl NamesArg {
    /// The name server's id.
    pub(crate) fn server(&self) -> Result<Id, Failure> {
        match &self.names {
            Some(text) => crate::id::parse_id(text)
                .map_err(|e| Failure::comm(format!("tclcomm: --names: {e}"))),
            None => names::default_server().map_err(|e| Failure::comm(format!("tclcomm: {e}"))),
        }
    }
}

/// An id, or a name looked up at the name server: what `send` and
/// `attach` accept. Text that looks like an id is read as one (with the
/// id's errors); anything else is a name.
pub(crate) async fn resolve_target(
    text: &str,
    names: &NamesArg,
    config: Config,
) -> Result<Id, Failure> {
    if names::looks_like_id(text) {
        return crate::id::parse_id(text).map_err(|e| Failure::comm(format!("tclcomm: {e}")));
    }
    let server = names.server()?;
    match names::resolve(&server, text, config).await {
        Ok(id) => Ok(id),
        Err(ResolveError::NoServer { server, source }) => {
            let as_id = tclcomm::Id::parse(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            Err(Failure::comm(format!(
                "tclcomm: {as_id}; as a name, it cannot be looked up: no name server present @ \
                 {server} ({source}).\nStart one with `tclcomm names serve`, or say where it is \
                 with --names HOST:PORT or ${}.",
                names::ENV_VAR
            )))
        }
        Err(e @ ResolveError::NotFound { .. }) => Err(Failure::comm(format!(
            "tclcomm: {e} (`tclcomm names list` shows the names bound there)"
        ))),
        Err(e) => Err(Failure::comm(format!("tclcomm: {e}"))),
    }
}

/// Arguments of `tclcomm names`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a name server (as tcllib's nnsd) until SIGINT or SIGTERM.
    ///
    /// Prints its comm id as the first line of stdout. tcllib's `nameserv`
    /// clients and `nns` app use it as they use nnsd. Names are released
    /// when the connection of the peer that bound them goes.
    Serve(ServeArgs),
    /// Bind names and hold them until SIGINT or SIGTERM (released then).
    ///
    /// nns ties a name to the connection that bound it: the names live as
    /// long as this command, and are bound again if the name server
    /// restarts. Prints `bound NAME` for each once bound. By convention the
    /// data is the comm id of the named peer, so that `tclcomm send NAME`
    /// finds it.
    Bind(BindArgs),
    /// Print the names matching a glob pattern, one `NAME<TAB>DATA` a line.
    Search(SearchArgs),
    /// List the live names and the ids they stand for.
    List(SearchArgs),
    /// Print which comm id a name stands for.
    Resolve(ResolveArgs),
    /// Watch names come and go (continuous search) until SIGINT or SIGTERM.
    ///
    /// Prints `+ NAME<TAB>DATA` for each name bound (first those bound now)
    /// and `- NAME<TAB>DATA` for each released, as they happen; `# lost`
    /// and `# back` when the name server goes away and comes back (the
    /// search then resumes, with the changes meanwhile).
    Watch(SearchArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The port to listen on (0: one the OS assigns).
    #[arg(long, default_value_t = names::DEFAULT_PORT)]
    port: u16,

    /// Listen on every interface, not only 127.0.0.1 and ::1 (nnsd's
    /// `-localonly 0`).
    #[arg(long)]
    all_interfaces: bool,

    /// With --auth-required, only peers that prove the secret may bind (or
    /// search): registration requires the secret.
    #[command(flatten)]
    auth: crate::auth::AuthArgs,
}

#[derive(Debug, clap::Args)]
struct BindArgs {
    #[command(flatten)]
    names: NamesArg,

    #[command(flatten)]
    auth: crate::auth::AuthArgs,

    /// NAME DATA pairs (DATA: by convention, the comm id of the named peer).
    #[arg(value_name = "NAME DATA", required = true, num_args = 2..)]
    pairs: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct SearchArgs {
    #[command(flatten)]
    names: NamesArg,

    #[command(flatten)]
    auth: crate::auth::AuthArgs,

    /// A glob pattern, as Tcl's `string match` (`*`, `?`, `[a-z]`).
    #[arg(value_name = "PATTERN", default_value = "*")]
    pattern: String,
}

#[derive(Debug, clap::Args)]
struct ResolveArgs {
    #[command(flatten)]
    names: NamesArg,

    #[command(flatten)]
    auth: crate::auth::AuthArgs,

    /// The name.
    #[arg(value_name = "NAME")]
    name: String,
}

/// Runs `tclcomm names ...`.
pub(crate) fn run(args: Args) -> Outcome {
    let rt = crate::send::runtime()?;
    rt.block_on(async {
        match args.command {
            Command::Serve(a) => serve(a).await,
            Command::Bind(a) => bind(a).await,
            Command::Search(a) => search(a, false).await,
            Command::List(a) => search(a, true).await,
            Command::Resolve(a) => resolve(a).await,
            Command::Watch(a) => watch(a).await,
        }
    })
}

/// A receiver that gets a message on SIGINT or SIGTERM.
fn stop_signal() -> Result<tokio::sync::oneshot::Receiver<()>, Failure> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure::local(format!("tclcomm: cannot handle signals: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(());
            }
        })
        .map_err(|e| Failure::local(format!("tclcomm: cannot start the signal thread: {e}")))?;
    Ok(rx)
}

fn print_line(line: &str) -> Outcome {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::local(format!("tclcomm: cannot write: {e}")))
}

fn client_config(auth: &crate::auth::AuthArgs) -> Result<Config, Failure> {
    let mut config = Config::new();
    config.auth = auth.config()?;
    Ok(config)
}

/// What a failed request to the name server says.
fn server_failure(server: &Id, e: &tclcomm::Error) -> Failure {
    match e {
        tclcomm::Error::Remote(r) => Failure {
            code: crate::EXIT_REMOTE,
            message: format!("tclcomm: {}", r.message),
        },
        _ => Failure::comm(format!(
            "tclcomm: no name server present @ {server}: {e}\nStart one with `tclcomm names \
             serve`, or say where it is with --names HOST:PORT or ${}.",
            names::ENV_VAR
        )),
    }
}

async fn serve(a: ServeArgs) -> Outcome {
    let stop = stop_signal()?;
    let mut config = Config::listening().port(a.port).local(!a.all_interfaces);
    config.auth = a.auth.config()?;
    let server = Server::start(config).await.map_err(|e| {
        Failure::local(format!(
            "tclcomm names serve: cannot listen on port {}: {e}",
            a.port
        ))
    })?;
    print_line(server.id().as_str())?;
    tracing::info!(id = %server.id(), "name server up");
    let _ = stop.await;
    server.shutdown();
    Ok(())
}

async fn bind(a: BindArgs) -> Outcome {
    if !a.pairs.len().is_multiple_of(2) {
        return Err(Failure::comm(
            "tclcomm names bind: NAME DATA pairs expected (an odd number of words given)",
        ));
    }
    let stop = stop_signal()?;
    let server = a.names.server()?;
    let client = Client::connect(server.clone(), client_config(&a.auth)?)
        .await
        .map_err(|e| Failure::local(format!("tclcomm: cannot create a channel: {e}")))?;
    for pair in a.pairs.chunks(2) {
        let [name, data] = pair else { continue };
        client
            .bind(name, data)
            .await
            .map_err(|e| server_failure(&server, &e))?;
        print_line(&format!("bound {name}"))?;
    }
    let _ = stop.await;
    client.close();
    Ok(())
}

async fn search(a: SearchArgs, table: bool) -> Outcome {
    let server = a.names.server()?;
    let client = Client::connect(server.clone(), client_config(&a.auth)?)
        .await
        .map_err(|e| Failure::local(format!("tclcomm: cannot create a channel: {e}")))?;
    let pairs = client
        .search(&a.pattern)
        .await
        .map_err(|e| server_failure(&server, &e))?;
    client.close();
    if !table {
        for (name, data) in pairs {
            print_line(&format!("{name}\t{data}"))?;
        }
        return Ok(());
    }
    let width = pairs
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    print_line(&format!("{:width$}  ID", "NAME"))?;
    for (name, data) in pairs {
        let id = Id::parse(&data)
            .ok()
            .filter(|id| !id.is_anonymous())
            .map(|id| id.to_string())
            .unwrap_or_else(|| format!("(data: {data})"));
        print_line(&format!("{name:width$}  {id}"))?;
    }
    Ok(())
}

async fn resolve(a: ResolveArgs) -> Outcome {
    let server = a.names.server()?;
    let id = names::resolve(&server, &a.name, client_config(&a.auth)?)
        .await
        .map_err(|e| Failure::comm(format!("tclcomm: {e}")))?;
    print_line(id.as_str())
}

fn print_pairs(sign: char, pairs: &[(String, String)]) -> Outcome {
    for (name, data) in pairs {
        print_line(&format!("{sign} {name}\t{data}"))?;
    }
    Ok(())
}

async fn watch(a: SearchArgs) -> Outcome {
    let mut stop = stop_signal()?;
    let server = a.names.server()?;
    let client = Client::connect(server.clone(), client_config(&a.auth)?)
        .await
        .map_err(|e| Failure::local(format!("tclcomm: cannot create a channel: {e}")))?;
    // Reach the server first, so that a missing one is an error now.
    client
        .server_features()
        .await
        .map_err(|e| server_failure(&server, &e))?;
    let mut w = client
        .watch(&a.pattern)
        .await
        .map_err(|e| server_failure(&server, &e))?;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = w.next() => match ev {
                Some(Event::Added(p)) => print_pairs('+', &p)?,
                Some(Event::Removed(p)) => print_pairs('-', &p)?,
                Some(Event::Disconnected) => print_line("# lost")?,
                Some(Event::Reconnected) => print_line("# back")?,
                None => break,
            },
        }
    }
    drop(w);
    client.close();
    Ok(())
}

/// `tclcomm serve --name NAME`: binds NAME to the served id at the name
/// server, from a thread of its own (the serving interpreter's event loop
/// is not a tokio runtime), and keeps it bound across restarts of the name
/// server. Returns once the name is bound the first time, or with why not
/// (a name held by someone else is an error; a name server not there yet
/// is waited for in the background, with a warning).
pub(crate) fn register(
    name: String,
    id: String,
    names: &NamesArg,
    config: Config,
) -> Result<(), Failure> {
    let server = names.server()?;
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), Failure>>();
    std::thread::Builder::new()
        .name("names".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(Failure::local(format!(
                        "tclcomm serve: cannot start the runtime: {e}"
                    ))));
                    return;
                }
            };
            rt.block_on(async move {
                let client = match Client::connect(server.clone(), config).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(Failure::local(format!(
                            "tclcomm serve: cannot create a channel: {e}"
                        ))));
                        return;
                    }
                };
                let mut warned = false;
                loop {
                    match client.bind(&name, &id).await {
                        Ok(()) => {
                            let _ = tx.send(Ok(()));
                            break;
                        }
                        Err(tclcomm::Error::Remote(r)) => {
                            let message = format!("tclcomm serve: --name {name}: {}", r.message);
                            if warned {
                                // Serving already: say so, and serve on unnamed.
                                eprintln!("{message}; serving without the name");
                            } else {
                                let _ = tx.send(Err(Failure::comm(message)));
                            }
                            return;
                        }
                        Err(e) => {
                            if !warned {
                                warned = true;
                                eprintln!(
                                    "tclcomm serve: --name {name}: no name server present @ \
                                     {server} ({e}); serving, and binding the name once one is \
                                     there"
                                );
                                let _ = tx.send(Ok(()));
                            }
                            tokio::time::sleep(names::DEFAULT_RECONNECT_DELAY).await;
                        }
                    }
                }
                // Hold the name (and re-bind it after a restart of the name
                // server) for as long as the process lives.
                std::future::pending::<()>().await;
            });
        })
        .map_err(|e| Failure::local(format!("tclcomm serve: cannot start a thread: {e}")))?;
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            Err(Failure::comm(
                "tclcomm serve: --name: no answer from the name server",
            ))
        })
}
