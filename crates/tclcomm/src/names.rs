//! Names instead of port numbers: tcllib's nns ("nano name service"),
//! protocol version 1 with its `Core` and `Search/Continuous` features, on
//! this runtime.
//!
//! - [`Server`]: a name server, wire-compatible with tcllib's
//!   `nameserv::server` (and its app `nnsd`), so tcllib's `nameserv` and
//!   `nameserv::auto` clients use it unchanged. A name is tied to the
//!   connection of the peer that bound it and released when that
//!   connection goes. Unlike tcllib's server, `Search/Continuous/Stop`
//!   works (tcllib's raises `can't read "comm"`).
//! - [`Client`]: bind, release, search and continuous search ([`Watch`]),
//!   re-binding its names and resuming its searches when the server comes
//!   back after a restart, as `nameserv::auto` does.
//! - [`resolve`] and [`lookup`]: a name to a comm [`Id`]. By this crate's
//!   convention (nns itself leaves the data free), the data bound with a
//!   name is the comm id of the named peer: `45001`, or `45001 host`.
//!
//! ```
//! use tclcomm::names::{self, Client, Server};
//! use tclcomm::Config;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // A name server (on port 0 here; nns's own port is names::DEFAULT_PORT).
//! let server = Server::start(Config::listening()).await?;
//!
//! // An application names itself: the data is its comm id.
//! let app = Client::connect(server.id(), Config::new()).await?;
//! app.bind("editor", "45001").await?;
//!
//! // Anyone can look the name up.
//! let id = names::resolve(&server.id(), "editor", Config::new()).await?;
//! assert_eq!(id.to_string(), "45001");
//! assert_eq!(names::lookup("4500", &server.id(), Config::new()).await?.to_string(), "4500");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tclcomm_wire::list::{format_list, parse_list};
use tokio::sync::mpsc;

use crate::{Channel, Config, Dispatcher, Error, Id, Script, TclError};

/// nns's default port (tcllib's `nameserv::common::port`).
pub const DEFAULT_PORT: u16 = 38573;

/// The nns protocol version this module speaks (`ProtocolVersion`).
pub const PROTOCOL_VERSION: &str = "1";

/// The protocol features of the server (`ProtocolFeatures`).
pub const FEATURES: &str = "Core Search/Continuous";

/// The environment variable that says where the name server is
/// (`HOST:PORT`, `PORT` or `"PORT HOST"`); see [`default_server`].
pub const ENV_VAR: &str = "TCLCOMM_NAMES";

/// How long the client waits between attempts to reach a name server that
/// went away (`nameserv::auto`'s `-delay`, 1 s by default).
pub const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Bound on one request of the client to the server: a name server answers
/// at once, so a longer wait means it is stuck or not a name server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the name server is: `$TCLCOMM_NAMES` if set (any id form), else
/// nns's default, port 38573 on this host.
pub fn default_server() -> Result<Id, String> {
    match std::env::var(ENV_VAR) {
        Ok(text) if !text.trim().is_empty() => {
            Id::parse(&text).map_err(|e| format!("${ENV_VAR}: {e}"))
        }
        _ => Ok(Id::port(DEFAULT_PORT)),
    }
}

// ---------------------------------------------------------------------------
// Glob matching, as Tcl's `string match` (what nns's `array get data
// $pattern` uses).

/// Whether `text` matches the glob `pattern` by Tcl's `string match` rules:
/// `*` any run of characters, `?` one character, `[chars]` one of a set
/// (with `a-z` ranges), `\x` the character x.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point (the last `*`), linear
    // in practice and never recursive, whatever a peer sends.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    while pi < p.len() && p[pi] == '*' {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, ti));
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some(next) = match_class(&p, pi, t[ti]) {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`; the index
/// after the class if it matches.
fn match_class(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    let mut matched = false;
    while i < p.len() && p[i] != ']' {
        let mut lo = p[i];
        if lo == '\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let mut hi = p[i + 2];
            i += 2;
            if hi == '\\' && i + 1 < p.len() {
                i += 1;
                hi = p[i];
            }
            let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            matched |= a <= c && c <= b;
        } else {
            matched |= lo == c;
        }
        i += 1;
    }
    // Tcl treats an unterminated class as matching up to the pattern's end.
    if matched {
        Some((i + 1).min(p.len()))
    } else {
        None
    }
}

/// `name` as a glob that matches only itself (for exact look-ups through
/// nns's pattern search).
pub fn glob_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reads an nns dictionary (`name data name data ...`) into pairs.
fn parse_dict(text: &str) -> Result<Vec<(String, String)>, String> {
    let words = parse_list(text).map_err(|e| format!("not a list: {e}"))?;
    if !words.len().is_multiple_of(2) {
        return Err("missing value to go with key".into());
    }
    let mut it = words.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn format_dict<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    format_list(
        pairs
            .into_iter()
            .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
    )
}

// ---------------------------------------------------------------------------
// The server.

/// One continuous search: who asked, their tag, the pattern.
#[derive(Debug, Clone)]
struct Search {
    holder: Id,
    tag: String,
    pattern: String,
}

#[derive(Debug, Default)]
struct Registry {
    /// name -> (data, holder).
    data: BTreeMap<String, (String, Id)>,
    /// holder -> its names, in bind order.
    names: HashMap<Id, Vec<String>>,
    /// Continuous searches, oldest first.
    searches: Vec<Search>,
}

/// A notification to send: to whom, what.
type Notice = (Id, Script);

fn change(tag: &str, kind: &str, dict: &str) -> Script {
    Script::command(["Search/Continuous/Change", tag, kind, dict])
}

impl Registry {
    fn bind(&mut self, holder: &Id, name: &str, data: &str, out: &mut Vec<Notice>) -> bool {
        if self.data.contains_key(name) {
            return false;
        }
        self.data
            .insert(name.to_string(), (data.to_string(), holder.clone()));
        self.names
            .entry(holder.clone())
            .or_default()
            .push(name.to_string());
        let dict = format_list([name, data]);
        for s in &self.searches {
            if glob_match(&s.pattern, name) {
                out.push((s.holder.clone(), change(&s.tag, "add", &dict)));
            }
        }
        true
    }

    /// Releases the names and searches of `holder` (its `Release`, or its
    /// connection went away).
    fn release(&mut self, holder: &Id, searches_too: bool, out: &mut Vec<Notice>) {
        if searches_too {
            self.searches.retain(|s| &s.holder != holder);
        }
        let Some(names) = self.names.remove(holder) else {
            return;
        };
        let gone: Vec<(String, String)> = names
            .into_iter()
            .filter_map(|n| self.data.remove(&n).map(|(d, _)| (n, d)))
            .collect();
        for s in &self.searches {
            let hits: Vec<(&String, &String)> = gone
                .iter()
                .filter(|(n, _)| glob_match(&s.pattern, n))
                .map(|(n, d)| (n, d))
                .collect();
            if !hits.is_empty() {
                out.push((
                    s.holder.clone(),
                    change(&s.tag, "remove", &format_dict(hits)),
                ));
            }
        }
    }

    fn search(&self, pattern: &str) -> String {
        format_dict(
            self.data
                .iter()
                .filter(|(n, _)| glob_match(pattern, n))
                .map(|(n, (d, _))| (n, d)),
        )
    }
}

/// The registry, and the signal of its changes ([`Server::wait_until`]).
#[derive(Debug)]
struct Book {
    registry: Mutex<Registry>,
    changed: tokio::sync::watch::Sender<()>,
}

impl Book {
    fn new() -> Book {
        Book {
            registry: Mutex::new(Registry::default()),
            changed: tokio::sync::watch::channel(()).0,
        }
    }

    /// The registry, to read.
    fn read(&self) -> std::sync::MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// The registry, to change: the change is signalled when the guard goes.
    fn edit(&self) -> Edit<'_> {
        Edit {
            guard: lock(&self.registry),
            changed: &self.changed,
        }
    }
}

/// A registry being changed ([`Book::edit`]).
struct Edit<'a> {
    guard: std::sync::MutexGuard<'a, Registry>,
    changed: &'a tokio::sync::watch::Sender<()>,
}

impl std::ops::Deref for Edit<'_> {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.guard
    }
}

impl std::ops::DerefMut for Edit<'_> {
    fn deref_mut(&mut self) -> &mut Registry {
        &mut self.guard
    }
}

impl Drop for Edit<'_> {
    fn drop(&mut self) {
        self.changed.send_replace(());
    }
}

/// An nns name server on a comm channel.
///
/// Received scripts run in an evaluator that knows only nns's messages
/// (`Bind`, `Release`, `Search`, `Search/Continuous/Start`,
/// `Search/Continuous/Stop`, `ProtocolVersion`, `ProtocolFeatures`), like
/// tcllib's server with its alias-only interpreter. Dropping the server
/// destroys its channel.
#[derive(Debug)]
pub struct Server {
    channel: Channel,
    book: Arc<Book>,
    /// Ends the notification task with the server.
    stop: tokio_util::sync::CancellationToken,
}

impl Server {
    /// Starts a name server on a channel made from `config` (which is made
    /// to listen; give it [`DEFAULT_PORT`] for nns's usual place, and
    /// [`Config::auth`] with `required` so that only holders of the secret
    /// may bind, or even search).
    pub async fn start(config: Config) -> Result<Server, Error> {
        let book = Arc::new(Book::new());
        let (tx, rx) = mpsc::unbounded_channel::<Notice>();
        let commands = server_commands(&book, &tx);
        let channel = Channel::new(config.listen(true).evaluator(commands)).await?;
        {
            let book = Arc::clone(&book);
            let tx = tx.clone();
            channel.on_lost(move |ev| {
                let mut out = Vec::new();
                book.edit().release(&ev.id, true, &mut out);
                for n in out {
                    let _ = tx.send(n);
                }
            });
        }
        // One task sends every notification, in order: an `add` and a later
        // `remove` for the same search never overtake each other.
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(notifier(channel.clone(), rx, stop.clone()));
        Ok(Server {
            channel,
            book,
            stop,
        })
    }

    /// The server's comm id (its port).
    pub fn id(&self) -> Id {
        self.channel.self_id()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.channel.port()
    }

    /// Its channel (for hooks, or to shut it down).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The names bound now, with their data and holders, sorted by name.
    pub fn names(&self) -> Vec<(String, String, Id)> {
        self.book
            .read()
            .data
            .iter()
            .map(|(n, (d, h))| (n.clone(), d.clone(), h.clone()))
            .collect()
    }

    /// The continuous searches running now: who asked, their tag, the
    /// pattern.
    pub fn searches(&self) -> Vec<(Id, String, String)> {
        self.book
            .read()
            .searches
            .iter()
            .map(|s| (s.holder.clone(), s.tag.clone(), s.pattern.clone()))
            .collect()
    }

    /// Waits until `done` holds for the server, checked now and after each
    /// change of its names or searches: to wait for a holder's name to go,
    /// or a search to start, without polling. Bound it with a timeout.
    pub async fn wait_until(&self, mut done: impl FnMut(&Server) -> bool) {
        let mut changes = self.book.changed.subscribe();
        while !done(self) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops serving: closes every connection (their names are forgotten).
    /// The listening socket closes soon after; [`close`](Server::close)
    /// waits for it.
    pub fn shutdown(&self) {
        self.stop.cancel();
        self.channel.destroy();
        *self.book.edit() = Registry::default();
    }

    /// Like [`shutdown`](Server::shutdown), and returns once the listening
    /// socket is closed, so that a new server can take the port at once.
    pub async fn close(&self) {
        self.stop.cancel();
        self.channel.close().await;
        *self.book.edit() = Registry::default();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
        self.channel.destroy();
    }
}

async fn notifier(
    channel: Channel,
    mut rx: mpsc::UnboundedReceiver<Notice>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let (id, script) = tokio::select! {
            _ = stop.cancelled() => return,
            next = rx.recv() => match next {
                Some(notice) => notice,
                None => return,
            },
        };
        if channel.is_destroyed() {
            return;
        }
        // Only over a connection that is still there: a searcher that went
        // away is released by the lost hook, and connecting back to it
        // could wait on an unreachable host.
        if !channel.interps().contains(&id) {
            continue;
        }
        let send = channel.send_async(id.clone(), script);
        if let Err(e) = tokio::time::timeout(REQUEST_TIMEOUT, send)
            .await
            .unwrap_or_else(|_| Err(Error::Lost("timed out".into())))
        {
            tracing::debug!("nns notification to {id} not sent: {e}");
        }
    }
}

fn server_commands(book: &Arc<Book>, tx: &mpsc::UnboundedSender<Notice>) -> Dispatcher {
    let d = Dispatcher::empty();
    let caller = || crate::remoteid().unwrap_or_else(|| Id::port(0));
    let send_all = |tx: &mpsc::UnboundedSender<Notice>, out: Vec<Notice>| {
        for n in out {
            let _ = tx.send(n);
        }
    };
    {
        let (r, tx) = (Arc::clone(book), tx.clone());
        d.register("Bind", move |_call, args| {
            let [name, data] = args else {
                return Err(TclError::wrong_args("Bind name data"));
            };
            let mut out = Vec::new();
            let ok = r.edit().bind(&caller(), name, data, &mut out);
            send_all(&tx, out);
            if ok {
                Ok(String::new())
            } else {
                Err(TclError::new(format!("Name \"{name}\" is already bound")))
            }
        });
    }
    {
        let (r, tx) = (Arc::clone(book), tx.clone());
        d.register("Release", move |_call, args| {
            if !args.is_empty() {
                return Err(TclError::wrong_args("Release"));
            }
            let mut out = Vec::new();
            // tcllib's Release drops the caller's searches too.
            r.edit().release(&caller(), true, &mut out);
            send_all(&tx, out);
            Ok(String::new())
        });
    }
    {
        let r = Arc::clone(book);
        d.register("Search", move |_call, args| {
            let [pattern] = args else {
                return Err(TclError::wrong_args("Search pattern"));
            };
            Ok(r.read().search(pattern))
        });
    }
    {
        let (r, tx) = (Arc::clone(book), tx.clone());
        d.register("Search/Continuous/Start", move |_call, args| {
            let [tag, pattern] = args else {
                return Err(TclError::wrong_args("Search/Continuous/Start tag pattern"));
            };
            let holder = caller();
            let mut reg = r.edit();
            if reg
                .searches
                .iter()
                .any(|s| s.holder == holder && &s.tag == tag)
            {
                return Ok(String::new());
            }
            reg.searches.push(Search {
                holder: holder.clone(),
                tag: tag.clone(),
                pattern: pattern.clone(),
            });
            // The initial set, possibly empty, as tcllib sends it; queued
            // under the lock so no later change overtakes it.
            let _ = tx.send((holder, change(tag, "add", &reg.search(pattern))));
            Ok(String::new())
        });
    }
    {
        let r = Arc::clone(book);
        d.register("Search/Continuous/Stop", move |_call, args| {
            let [tag] = args else {
                return Err(TclError::wrong_args("Search/Continuous/Stop tag"));
            };
            let holder = caller();
            r.edit()
                .searches
                .retain(|s| !(s.holder == holder && &s.tag == tag));
            Ok(String::new())
        });
    }
    d.register("ProtocolVersion", |_call, args| {
        if !args.is_empty() {
            return Err(TclError::wrong_args("ProtocolVersion"));
        }
        Ok(PROTOCOL_VERSION.into())
    });
    d.register("ProtocolFeatures", |_call, args| {
        if !args.is_empty() {
            return Err(TclError::wrong_args("ProtocolFeatures"));
        }
        Ok(FEATURES.into())
    });
    d
}

// ---------------------------------------------------------------------------
// Resolution.

/// Why a name could not be resolved to an id.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No name server answered there.
    #[error("no name server present @ {server}: {source}")]
    NoServer {
        /// Where it was looked for.
        server: Id,
        /// The communication failure.
        source: Error,
    },
    /// The name server refused or failed the request.
    #[error("the name server @ {server} failed: {source}")]
    Server {
        /// The name server.
        server: Id,
        /// Its error.
        source: Error,
    },
    /// No such name is bound.
    #[error("no name \"{name}\" is bound at the name server @ {server}")]
    NotFound {
        /// The name.
        name: String,
        /// The name server.
        server: Id,
    },
    /// The name is bound, but its data is not a comm id.
    #[error("the name \"{name}\" is bound to \"{data}\", which is not a comm id")]
    NotAnId {
        /// The name.
        name: String,
        /// Its data.
        data: String,
    },
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "::1" | "localhost") || host.starts_with("127.")
}

/// The id that the data of a name stands for, as seen from here: data
/// without a host means the name server's host when that is not this one.
fn id_of_data(data: &str, server: &Id) -> Option<Id> {
    let id = Id::parse(data).ok().filter(|id| !id.is_anonymous())?;
    let words = parse_list(id.as_str()).unwrap_or_default();
    let server_host = server.host();
    if words.len() == 1 && !is_loopback_host(&server_host) {
        return Some(Id::with_host(id.port_text(), server_host));
    }
    Some(id)
}

/// Asks the name server at `server` which comm id `name` stands for (the
/// data bound with it; see the module's convention). `config` is for the
/// short-lived channel of the request (transport, authentication).
pub async fn resolve(server: &Id, name: &str, config: Config) -> Result<Id, ResolveError> {
    let channel =
        Channel::new(config.listen(false))
            .await
            .map_err(|source| ResolveError::NoServer {
                server: server.clone(),
                source,
            })?;
    let got = channel
        .send_timeout(
            server.clone(),
            Script::command(["Search", &glob_escape(name)]),
            REQUEST_TIMEOUT,
        )
        .await;
    channel.destroy();
    let text = got.map_err(|source| request_error(server, source))?;
    let pairs = parse_dict(&text).map_err(|why| ResolveError::Server {
        server: server.clone(),
        source: Error::Lost(format!("not an nns answer ({why}): {text}")),
    })?;
    id_among(pairs, name, server)
}

/// A failed request to the name server `server`: its own error, or no
/// server to ask.
fn request_error(server: &Id, source: Error) -> ResolveError {
    match source {
        Error::Remote(_) => ResolveError::Server {
            server: server.clone(),
            source,
        },
        _ => ResolveError::NoServer {
            server: server.clone(),
            source,
        },
    }
}

/// The id that `name` stands for among the name/data pairs of a search at
/// `server`.
// The error is the public look-ups' own, returned by value as they do.
#[allow(clippy::result_large_err)]
fn id_among(pairs: Vec<(String, String)>, name: &str, server: &Id) -> Result<Id, ResolveError> {
    let Some((_, data)) = pairs.into_iter().find(|(n, _)| n == name) else {
        return Err(ResolveError::NotFound {
            name: name.to_string(),
            server: server.clone(),
        });
    };
    id_of_data(&data, server).ok_or_else(|| ResolveError::NotAnId {
        name: name.to_string(),
        data,
    })
}

/// Whether `text` is meant as a comm id rather than a name: it reads as
/// one, or looks like one gone wrong (digits first, a bracket or brace,
/// blanks, or `HOST:PORT`'s colon and digits), so that a mistyped id gets
/// the id's error and not a name look-up.
pub fn looks_like_id(text: &str) -> bool {
    let t = text.trim();
    if Id::parse(t).is_ok() {
        return true;
    }
    let first = t.chars().next();
    first.is_none_or(|c| c.is_ascii_digit() || c == '[' || c == '{' || c == ':')
        || t.chars().any(char::is_whitespace)
        || t.rsplit_once(':')
            .is_some_and(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
}

/// An id or a name to an id, in one place: text that
/// [`looks_like_id`] is parsed as an id ([`Id::parse`]'s forms), anything
/// else is a name resolved at the name server `server`.
pub async fn lookup(text: &str, server: &Id, config: Config) -> Result<Id, LookupError> {
    if looks_like_id(text) {
        return Id::parse(text).map_err(LookupError::Id);
    }
    resolve(server, text, config)
        .await
        .map_err(LookupError::Name)
}

/// Why [`lookup`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// A malformed id.
    #[error(transparent)]
    Id(tclcomm_wire::id::IdError),
    /// A name that could not be resolved.
    #[error(transparent)]
    Name(ResolveError),
}

// ---------------------------------------------------------------------------
// The client.

/// What a [`Watch`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Names that matched the pattern appeared (the first event carries all
    /// those bound when the search started, possibly none).
    Added(Vec<(String, String)>),
    /// Names that matched went away.
    Removed(Vec<(String, String)>),
    /// The name server went away; the search resumes when it is back.
    Disconnected,
    /// The name server is back and the search resumed (the `Added` and
    /// `Removed` events around it bring the names up to date).
    Reconnected,
}

#[derive(Debug)]
struct WatchState {
    pattern: String,
    tx: mpsc::UnboundedSender<Event>,
    current: BTreeMap<String, String>,
    /// The next `add` is a full set after a reconnection: diff it.
    resync: bool,
}

#[derive(Debug, Default)]
struct ClientState {
    bindings: BTreeMap<String, String>,
    watches: HashMap<String, WatchState>,
    lost_names: Vec<(String, String)>,
    disconnected: bool,
    reconnecting: bool,
    closed: bool,
    next_tag: u64,
}

#[derive(Debug)]
struct ClientInner {
    channel: Channel,
    server: Id,
    delay: Duration,
    state: Mutex<ClientState>,
    /// Serializes re-binding after a reconnection with the user's requests.
    resync: tokio::sync::Mutex<()>,
    /// The runtime the client was made on, for its reconnection task (the
    /// lost hook may run outside the runtime's context).
    handle: tokio::runtime::Handle,
}

/// A client of an nns name server, as tcllib's `nameserv::auto`: it keeps
/// its names and searches across a restart of the server (retrying every
/// [`DEFAULT_RECONNECT_DELAY`], or as set with
/// [`Client::connect_with_delay`]).
///
/// Its channel listens on loopback (port 0), as tcllib's client does: the
/// server knows it by that id and sends search changes back over the
/// connection. Names it binds live as long as the client (dropping it
/// releases them).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// A client of the name server `server`; `config` gives transport and
    /// authentication (the channel is made to listen, for the server's
    /// notifications). Does not contact the server yet.
    pub async fn connect(server: Id, config: Config) -> Result<Client, Error> {
        Client::connect_with_delay(server, config, DEFAULT_RECONNECT_DELAY).await
    }

    /// As [`connect`](Client::connect), retrying a lost server every `delay`.
    pub async fn connect_with_delay(
        server: Id,
        config: Config,
        delay: Duration,
    ) -> Result<Client, Error> {
        // The evaluator is made before the state it reports to: it finds
        // that state through this cell, filled once the channel exists.
        let cell: Arc<Mutex<Weak<ClientInner>>> = Arc::new(Mutex::new(Weak::new()));
        let commands = client_commands_cell(Arc::clone(&cell));
        let channel = Channel::new(config.listen(true).evaluator(commands)).await?;
        let inner = Arc::new(ClientInner {
            channel: channel.clone(),
            server: server.clone(),
            delay: delay.max(Duration::from_millis(10)),
            state: Mutex::new(ClientState::default()),
            resync: tokio::sync::Mutex::new(()),
            handle: tokio::runtime::Handle::current(),
        });
        *lock(&cell) = Arc::downgrade(&inner);
        let weak = Arc::downgrade(&inner);
        channel.on_lost(move |ev| {
            if let Some(inner) = weak.upgrade()
                && ev.id == inner.server
            {
                ClientInner::lost(&inner);
            }
        });
        Ok(Client { inner })
    }

    /// The name server's id.
    pub fn server(&self) -> &Id {
        &self.inner.server
    }

    /// This client's comm id (what the server ties its names to).
    pub fn self_id(&self) -> Id {
        self.inner.channel.self_id()
    }

    /// Binds `name` to `data` (by this crate's convention a comm id). Fails
    /// with tcllib's `Name "<name>" is already bound` if someone holds it.
    /// The name is kept: bound again after a restart of the server.
    pub async fn bind(&self, name: &str, data: &str) -> Result<(), Error> {
        self.ensure().await?;
        self.inner.request(["Bind", name, data]).await?;
        lock(&self.inner.state)
            .bindings
            .insert(name.to_string(), data.to_string());
        Ok(())
    }

    /// Releases every name this client holds (nns has no per-name release)
    /// and forgets them.
    pub async fn release(&self) -> Result<(), Error> {
        lock(&self.inner.state).bindings.clear();
        self.ensure().await?;
        self.inner.request(["Release"]).await?;
        // tcllib's server drops the releaser's searches too: start ours again.
        self.inner.resume_searches().await;
        Ok(())
    }

    /// The names matching the glob `pattern` and their data, sorted by name.
    pub async fn search(&self, pattern: &str) -> Result<Vec<(String, String)>, Error> {
        self.ensure().await?;
        let text = self.inner.request(["Search", pattern]).await?;
        let mut pairs =
            parse_dict(&text).map_err(|why| Error::Lost(format!("not an nns answer: {why}")))?;
        pairs.sort();
        Ok(pairs)
    }

    /// Which comm id `name` stands for.
    pub async fn resolve(&self, name: &str) -> Result<Id, ResolveError> {
        let server = self.inner.server.clone();
        let pairs = self
            .search(&glob_escape(name))
            .await
            .map_err(|source| request_error(&server, source))?;
        id_among(pairs, name, &server)
    }

    /// The server's protocol version (`1`).
    pub async fn server_protocol(&self) -> Result<String, Error> {
        self.inner.request(["ProtocolVersion"]).await
    }

    /// The server's features (`Core Search/Continuous`).
    pub async fn server_features(&self) -> Result<String, Error> {
        self.inner.request(["ProtocolFeatures"]).await
    }

    /// The names this client holds (those lost to another holder after a
    /// restart of the server are in [`lost_names`](Client::lost_names)).
    pub fn bindings(&self) -> Vec<(String, String)> {
        let st = lock(&self.inner.state);
        st.bindings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Names that could not be bound again after a restart of the server
    /// (someone else took them meanwhile): `nameserv::auto`'s `lost-name`.
    pub fn lost_names(&self) -> Vec<(String, String)> {
        lock(&self.inner.state).lost_names.clone()
    }

    /// Whether the server is known to be away (a reconnection is pending).
    pub fn is_disconnected(&self) -> bool {
        lock(&self.inner.state).disconnected
    }

    /// Starts a continuous search for names matching `pattern`: the
    /// [`Watch`] reports the current matches, then every name added or
    /// removed, across restarts of the server.
    pub async fn watch(&self, pattern: &str) -> Result<Watch, Error> {
        self.ensure().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let tag = {
            let mut st = lock(&self.inner.state);
            st.next_tag += 1;
            let tag = format!("::tclcomm::names::watch{}", st.next_tag);
            st.watches.insert(
                tag.clone(),
                WatchState {
                    pattern: pattern.to_string(),
                    tx,
                    current: BTreeMap::new(),
                    resync: false,
                },
            );
            tag
        };
        let started = self
            .inner
            .channel
            .send_async(
                self.inner.server.clone(),
                Script::command(["Search/Continuous/Start", &tag, pattern]),
            )
            .await;
        if let Err(e) = started {
            lock(&self.inner.state).watches.remove(&tag);
            return Err(e);
        }
        Ok(Watch {
            rx,
            tag,
            client: Arc::downgrade(&self.inner),
        })
    }

    /// Closes the client: its names are released (its connection goes).
    pub fn close(&self) {
        lock(&self.inner.state).closed = true;
        self.inner.channel.destroy();
    }

    /// Brings the server up to date first if it was lost and is back.
    async fn ensure(&self) -> Result<(), Error> {
        if !lock(&self.inner.state).disconnected {
            return Ok(());
        }
        ClientInner::try_resync(&self.inner).await
    }
}

impl ClientInner {
    async fn request<const N: usize>(&self, words: [&str; N]) -> Result<String, Error> {
        let got = self
            .channel
            .send_timeout(self.server.clone(), Script::command(words), REQUEST_TIMEOUT)
            .await;
        if let Err(e) = &got
            && !matches!(e, Error::Remote(_))
            && !self.channel.interps().contains(&self.server)
        {
            // No connection to the server (it never came up, or it went):
            // the names it held for us are gone with it, so the next
            // request binds the kept ones again and resumes the searches.
            // A slow answer on a live connection is not that: the server
            // still holds our names, and binding them again would collide.
            ClientInner::mark_lost(self);
        }
        got
    }

    fn mark_lost(&self) -> bool {
        let mut st = lock(&self.state);
        if st.closed || st.disconnected {
            return false;
        }
        st.disconnected = true;
        for w in st.watches.values_mut() {
            w.resync = true;
            let _ = w.tx.send(Event::Disconnected);
        }
        true
    }

    fn lost(inner: &Arc<ClientInner>) {
        inner.mark_lost();
        let mut st = lock(&inner.state);
        if st.closed || st.reconnecting {
            return;
        }
        st.reconnecting = true;
        drop(st);
        let weak = Arc::downgrade(inner);
        let delay = inner.delay;
        inner.handle.spawn(async move {
            loop {
                tokio::time::sleep(delay).await;
                let Some(inner) = weak.upgrade() else { return };
                if lock(&inner.state).closed {
                    return;
                }
                if !lock(&inner.state).disconnected || ClientInner::try_resync(&inner).await.is_ok()
                {
                    lock(&inner.state).reconnecting = false;
                    return;
                }
            }
        });
    }

    /// One attempt to reach the server again; on success binds the kept
    /// names again and resumes the searches (as `nameserv::auto`'s Rebind).
    async fn try_resync(inner: &Arc<ClientInner>) -> Result<(), Error> {
        let _guard = inner.resync.lock().await;
        if !lock(&inner.state).disconnected {
            return Ok(());
        }
        let probe = inner
            .channel
            .send_timeout(inner.server.clone(), "ProtocolFeatures", REQUEST_TIMEOUT)
            .await;
        if let Err(e) = probe {
            if !matches!(e, Error::Remote(_)) {
                // Make sure a half-open connection is not reused.
                inner.channel.shutdown(inner.server.clone());
            }
            return Err(e);
        }
        lock(&inner.state).disconnected = false;
        let bindings: Vec<(String, String)> = {
            let st = lock(&inner.state);
            st.bindings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        for (name, data) in bindings {
            match inner.request(["Bind", &name, &data]).await {
                Ok(_) => {}
                Err(Error::Remote(e)) => {
                    tracing::warn!("name \"{name}\" not bound again: {}", e.message);
                    let mut st = lock(&inner.state);
                    st.bindings.remove(&name);
                    st.lost_names.push((name, data));
                }
                Err(e) => return Err(e),
            }
        }
        inner.resume_searches().await;
        let st = lock(&inner.state);
        for w in st.watches.values() {
            let _ = w.tx.send(Event::Reconnected);
        }
        Ok(())
    }

    async fn resume_searches(&self) {
        let searches: Vec<(String, String)> = {
            let mut st = lock(&self.state);
            st.watches
                .iter_mut()
                .map(|(tag, w)| {
                    w.resync = true;
                    (tag.clone(), w.pattern.clone())
                })
                .collect()
        };
        for (tag, pattern) in searches {
            let _ = self
                .channel
                .send_async(
                    self.server.clone(),
                    Script::command(["Search/Continuous/Start", &tag, &pattern]),
                )
                .await;
        }
    }

    /// A `Search/Continuous/Change` from the server.
    fn change(&self, tag: &str, kind: &str, dict: &str) -> Result<(), TclError> {
        let pairs = parse_dict(dict).map_err(TclError::new)?;
        let mut st = lock(&self.state);
        let Some(w) = st.watches.get_mut(tag) else {
            // A search we stopped (tcllib's client ignores these too).
            return Ok(());
        };
        match kind {
            "add" if w.resync => {
                w.resync = false;
                let fresh: BTreeMap<String, String> = pairs.into_iter().collect();
                let removed: Vec<(String, String)> = w
                    .current
                    .iter()
                    .filter(|(k, v)| fresh.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let added: Vec<(String, String)> = fresh
                    .iter()
                    .filter(|(k, v)| w.current.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                w.current = fresh;
                if !removed.is_empty() {
                    let _ = w.tx.send(Event::Removed(removed));
                }
                if !added.is_empty() {
                    let _ = w.tx.send(Event::Added(added));
                }
            }
            "add" => {
                for (k, v) in &pairs {
                    w.current.insert(k.clone(), v.clone());
                }
                let _ = w.tx.send(Event::Added(pairs));
            }
            "remove" => {
                for (k, _) in &pairs {
                    w.current.remove(k);
                }
                let _ = w.tx.send(Event::Removed(pairs));
            }
            other => {
                return Err(TclError::new(format!(
                    "bad change \"{other}\": must be add or remove"
                )));
            }
        }
        Ok(())
    }
}

fn client_commands_cell(cell: Arc<Mutex<Weak<ClientInner>>>) -> Dispatcher {
    let d = Dispatcher::empty();
    d.register("Search/Continuous/Change", move |_call, args| {
        let [tag, kind, dict] = args else {
            return Err(TclError::wrong_args(
                "Search/Continuous/Change tag type response",
            ));
        };
        let inner = lock(&cell).upgrade();
        match inner {
            Some(inner) => inner.change(tag, kind, dict).map(|()| String::new()),
            None => Ok(String::new()),
        }
    });
    d
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        // The last handle of the client: its names go with its connection.
        self.channel.destroy();
    }
}

/// A continuous search of a [`Client`]. Dropping it stops the search at
/// the server (`Search/Continuous/Stop`).
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::UnboundedReceiver<Event>,
    tag: String,
    client: Weak<ClientInner>,
}

impl Watch {
    /// The next change; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The matching names known now, sorted.
    pub fn current(&self) -> Vec<(String, String)> {
        let Some(inner) = self.client.upgrade() else {
            return Vec::new();
        };
        let st = lock(&inner.state);
        st.watches
            .get(&self.tag)
            .map(|w| {
                w.current
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some(inner) = self.client.upgrade() else {
            return;
        };
        lock(&inner.state).watches.remove(&self.tag);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let script = Script::command(["Search/Continuous/Stop", &self.tag]);
            handle.spawn(async move {
                let _ = inner.channel.send_async(inner.server.clone(), script).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{glob_escape, glob_match};

    #[test]
    fn glob_as_string_match() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "abc", true),
            ("f*", "foo", true),
            ("f*", "bar", false),
            ("?oo", "foo", true),
            ("?oo", "fo", false),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*.tcl", "x.tcl", true),
            ("ü*", "über", true),
        ] {
            assert_eq!(glob_match(p, t), want, "{p} ~ {t}");
        }
        for name in ["a*b", "x[1]", "q?", "back\\slash", "plain"] {
            assert!(glob_match(&glob_escape(name), name), "{name}");
            assert!(!glob_match(&glob_escape(name), &format!("{name}x")));
        }
    }
}
