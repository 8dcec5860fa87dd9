//! The comm channel on tokio: listener, connections, sends, hooks.
//!
//! Every channel runs one [`Engine`] behind a mutex. Tasks feed it (a reader
//! per connection, an acceptor per listening socket, the callers of `send`)
//! and carry out its actions: writes are queued to the connection's writer
//! task while the lock is held, so they leave in the engine's order;
//! everything that runs user code (hooks, evaluators, callbacks) runs after
//! the lock is released, so user code may call back into the channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tclcomm_wire::answer::{CallbackArgs, Failure};
use tclcomm_wire::engine::{Action, ConnId, Engine, Loss, OwnKeyMap, Request, RequestKind};
use tclcomm_wire::{Code, Id, Outcome, Serial};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace, warn};

use crate::config::{Config, Port};
use crate::error::{Error, io_text, outcome_to_result};
use crate::evaluator::{Evaluator, Incoming, Responder};
use crate::hooks::{
    ConnectedEvent, ConnectingEvent, EvalDecision, EvalEvent, HookKind, Hooks, IncomingEvent,
    LostEvent, ReplyEvent,
};
use crate::transport::{self, BoxRead, BoxWrite, Halves, Transport};

/// The script of a send: its fragments. One string is one fragment (the
/// usual `send id {script}`); several are joined by the receiver with Tcl's
/// `concat`, as `comm send id set b {hello world}` would be.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script(pub Vec<String>);

impl Script {
    /// A script of several fragments (double evaluation, as comm's `send id
    /// word word ...`).
    pub fn words<I, S>(words: I) -> Script
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Script(words.into_iter().map(Into::into).collect())
    }

    /// A script that calls one command with these exact arguments: the
    /// words are quoted as a Tcl list, so no argument is evaluated twice.
    pub fn command<I, S>(words: I) -> Script
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Script(vec![tclcomm_wire::list::format_list(words)])
    }
}

impl From<&str> for Script {
    fn from(s: &str) -> Script {
        Script(vec![s.to_string()])
    }
}

impl From<String> for Script {
    fn from(s: String) -> Script {
        Script(vec![s])
    }
}

impl From<&String> for Script {
    fn from(s: &String) -> Script {
        Script(vec![s.clone()])
    }
}

impl From<Vec<String>> for Script {
    fn from(v: Vec<String>) -> Script {
        Script(v)
    }
}

impl<const N: usize> From<[&str; N]> for Script {
    fn from(v: [&str; N]) -> Script {
        Script::words(v)
    }
}

/// What a `send -command` callback receives (tcllib's `-id -serial -chan
/// -code -errorcode -errorinfo -result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackInfo {
    /// The peer.
    pub id: Id,
    /// The serial the send returned.
    pub serial: u64,
    /// The channel's name.
    pub chan: String,
    /// The completion code; `None` when the connection was lost (tcllib's `-code -1`).
    pub code: Option<Code>,
    /// The remote errorCode (`NONE` on loss, empty when not sent).
    pub errorcode: String,
    /// The remote errorInfo (empty when not sent).
    pub errorinfo: String,
    /// The result, or the loss reason.
    pub result: String,
}

impl CallbackInfo {
    /// The code as tcllib passes it: `-1` on loss, else the wire code.
    pub fn code_text(&self) -> String {
        match &self.code {
            None => "-1".into(),
            Some(c) => c.to_string(),
        }
    }
}

type CallbackFn = Box<dyn FnOnce(CallbackInfo) + Send>;
/// Runs when a connection goes away (a responder's `on_lost`).
type LostCallback = Box<dyn FnOnce() + Send>;

enum Waiter {
    Sync(oneshot::Sender<Result<Outcome, String>>),
    Callback(CallbackFn),
}

struct ConnEntry {
    /// The socket itself, for plain TCP: written directly while nothing is
    /// queued, which saves a hop to the writer task.
    direct: Option<Arc<TcpStream>>,
    outbox: Arc<Outbox>,
    stop: Arc<Stop>,
}

/// Tells a connection's tasks to stop: the writer (and its linger) waits
/// on the token; the reader, which waits once per message it reads, on a
/// flag and a waker instead, which take no lock (polling a token's wait
/// takes its lock every time).
#[derive(Default)]
struct Stop {
    token: CancellationToken,
    reader: AtomicBool,
    reader_waker: AtomicWaker,
}

impl Stop {
    fn cancel(&self) {
        self.token.cancel();
        self.reader.store(true, Ordering::SeqCst);
        self.reader_waker.wake();
    }

    /// Ready once [`cancel`](Stop::cancel) has been called; for the reader.
    fn poll_reader(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // Registered before the flag is read, so a cancel in between wakes.
        self.reader_waker.register(cx.waker());
        if self.reader.load(Ordering::SeqCst) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

/// A connection's outgoing bytes on their way to its writer task: one
/// buffer that messages are appended to, and that the writer takes whole.
/// The writer is woken only when the buffer stops being empty, and a
/// message costs a copy, not an allocation and a queue node.
#[derive(Default)]
struct Outbox {
    /// Bytes queued and not yet written (those being written included).
    queued: AtomicUsize,
    bytes: Mutex<Vec<u8>>,
    /// Signalled when `bytes` stops being empty (a permit is kept if the
    /// writer is not waiting yet, so no wake-up is lost).
    ready: tokio::sync::Notify,
    /// A direct write is claimed (see [`Claimed`]): until it is made,
    /// nothing else writes to the socket, and what is queued meanwhile
    /// waits in `bytes` for the claimer. Set under the channel's lock
    /// while nothing is queued; cleared under `bytes`' lock.
    claimed: AtomicBool,
    /// The writer task is closing and waits for a claimed write to be
    /// made: the claimer wakes it when done.
    closing: AtomicBool,
}

impl Outbox {
    fn push(&self, bytes: Vec<u8>) {
        let mut b = lock(&self.bytes);
        let was_empty = b.is_empty();
        append(&mut b, bytes);
        // While a direct write is claimed its claimer writes this after
        // its own bytes (or wakes the writer): a wake-up now would let the
        // writer go first.
        let wake = was_empty && !self.claimed.load(Ordering::Acquire);
        drop(b);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Appends without waking the writer: the caller flushes (see
    /// [`Inner::flush_held`]).
    fn push_quiet(&self, bytes: Vec<u8>) {
        append(&mut lock(&self.bytes), bytes);
    }

    /// Writes what it can of `held` (this outbox's buffer, locked by the
    /// caller, who has made sure nothing else writes to the socket) and
    /// counts it as no longer queued.
    fn write_held(&self, held: &mut Vec<u8>, sock: &TcpStream) {
        let n = sock.try_write(held).unwrap_or(0);
        held.drain(..n);
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }

    /// Takes what is queued, leaving `spare` (emptied) in its place;
    /// nothing while a direct write is claimed (its claimer writes what is
    /// queued, or wakes the writer again).
    fn take(&self, spare: &mut Vec<u8>) {
        spare.clear();
        let mut b = lock(&self.bytes);
        if !self.claimed.load(Ordering::Acquire) {
            std::mem::swap(&mut *b, spare);
        }
    }
}

/// A write to a plain TCP socket claimed under the channel's lock (while
/// nothing was queued for the connection) and made after the lock is
/// released, so that the system call does not hold up the channel's other
/// connections (a server's other clients, on other threads).
struct Claimed {
    sock: Arc<TcpStream>,
    outbox: Arc<Outbox>,
    bytes: Vec<u8>,
}

impl Drop for Claimed {
    /// Writes what it can of its bytes, then of what was queued behind
    /// them meanwhile; the rest goes to the writer task, in order. (In
    /// `drop`, so that a claim is never left standing, which would stop
    /// the connection's writes for good.)
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.bytes);
        let n = self.sock.try_write(&bytes).unwrap_or(0);
        let whole = n == bytes.len();
        let outbox = &self.outbox;
        let mut held = lock(&outbox.bytes);
        if !whole {
            // The rest goes in front of what was queued meanwhile; into an
            // empty outbox it moves, with no second allocation of a big
            // message.
            bytes.drain(..n);
            if held.is_empty() {
                *held = bytes;
            } else {
                held.splice(0..0, bytes);
            }
        } else if !held.is_empty() {
            // Queued behind this write while it was claimed: nothing else
            // writes to the socket until `claimed` is cleared, so go on.
            outbox.write_held(&mut held, &self.sock);
        }
        outbox.queued.fetch_sub(n, Ordering::AcqRel);
        // SeqCst with `closing` (see `write_loop`): either the closing
        // writer sees the claim gone, or this sees it waiting.
        outbox.claimed.store(false, Ordering::SeqCst);
        let wake = !held.is_empty() || outbox.closing.load(Ordering::SeqCst);
        drop(held);
        if wake {
            outbox.ready.notify_one();
        }
    }
}

/// The claimed writes of one drain: nearly always one, kept without an
/// allocation (a drain happens for every message).
#[derive(Default)]
struct Writes {
    first: Option<Claimed>,
    more: Vec<Claimed>,
}

impl Writes {
    fn push(&mut self, w: Claimed) {
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.more.push(w);
        }
    }

    /// Makes them all (dropping a claim makes its write). Claims are of
    /// different connections, so their order does not matter.
    fn make(&mut self) {
        self.first = None;
        self.more.clear();
    }
}

/// Appends `bytes` to the outbox buffer `b`. Into an empty buffer too
/// small for them, `bytes` is moved, not copied: a big message is then
/// never copied (nor its pages faulted in) a second time.
fn append(b: &mut Vec<u8>, bytes: Vec<u8>) {
    if b.is_empty() && b.capacity() < bytes.len() {
        *b = bytes;
    } else {
        b.extend_from_slice(&bytes);
    }
}

thread_local! {
    /// The channel and connection whose answers this thread is holding
    /// (see [`Hold`]).
    static HOLDING: std::cell::RefCell<Option<(Weak<Inner>, ConnId)>> =
        const { std::cell::RefCell::new(None) };
}

/// Whether this thread holds the answers of `inner`'s connection `conn`.
fn holding(inner: &Inner, conn: ConnId) -> bool {
    HOLDING.with_borrow(|h| {
        h.as_ref()
            .is_some_and(|(w, c)| *c == conn && std::ptr::eq(w.as_ptr(), inner))
    })
}

/// Writes what this thread holds (see [`Hold`]) at once, and holds
/// nothing more: for code that is about to send, wait or block, so that
/// answers already made do not wait for it.
pub(crate) fn release_held() {
    if let Some((w, conn)) = HOLDING.take()
        && let Some(inner) = w.upgrade()
    {
        inner.flush_held(conn);
    }
}

/// While alive, answers written on this thread to one connection are held
/// in its outbox; when dropped, they are written at once.
struct Hold<'a> {
    inner: &'a Arc<Inner>,
    conn: ConnId,
    previous: Option<(Weak<Inner>, ConnId)>,
}

impl<'a> Hold<'a> {
    fn start(inner: &'a Arc<Inner>, conn: ConnId) -> Hold<'a> {
        let previous = HOLDING.replace(Some((Arc::downgrade(inner), conn)));
        Hold {
            inner,
            conn,
            previous,
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        HOLDING.set(self.previous.take());
        self.inner.flush_held(self.conn);
    }
}

/// The accept tasks of the listening sockets.
struct Listener {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Listener {
    /// Stops accepting; the sockets close as the tasks end.
    fn cancel(&self) {
        self.stop.cancel();
    }

    /// Stops accepting and waits until the sockets are closed, so that the
    /// port can be bound again at once.
    async fn close(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

struct State {
    engine: Engine,
    config: Config,
    evaluator: Arc<dyn Evaluator>,
    conns: OwnKeyMap<ConnId, ConnEntry>,
    /// Keyed by our own serials (not a peer's text): no need for a keyed hash.
    waiters: OwnKeyMap<u64, Waiter>,
    /// Per connection: callbacks to run when it goes, each with a token so
    /// that its owner can withdraw it.
    lost_callbacks: HashMap<ConnId, Vec<(u64, LostCallback)>>,
    next_token: u64,
    listener: Option<Listener>,
    port: u16,
    destroyed: bool,
    /// Connections the engine dropped for a limit (a peer that does not
    /// read, the receive budget, the cap) whose reader has not ended yet:
    /// their requests still waiting to run are skipped, since nobody takes
    /// the answers and building them is what the limit is there to stop.
    shed: OwnKeyMap<ConnId, ()>,
}

/// What a drain of the engine left to run once the lock is released.
#[derive(Default)]
struct Work {
    /// The evaluator of the requests: the channel's at the time of the
    /// drain (taken once per drain, not per request).
    evaluator: Option<Arc<dyn Evaluator>>,
    /// Writes to make once the lock is released, before anything else.
    writes: Writes,
    items: Vec<Deferred>,
}

enum Deferred {
    Evaluate(Request),
    Complete {
        serial: u64,
        id: Id,
        outcome: Outcome,
        waiter: Waiter,
    },
    Lost {
        id: Id,
        loss: Loss,
        waiters: Vec<(u64, Waiter)>,
        callbacks: Vec<LostCallback>,
    },
    Callbacks(Vec<LostCallback>),
}

/// The shared state behind [`Channel`] handles.
pub(crate) struct Inner {
    name: String,
    state: Mutex<State>,
    hooks: RwLock<Arc<Hooks>>,
    handle: tokio::runtime::Handle,
    /// Incoming connections in their transport (TLS) handshake, before the
    /// engine knows them: bounded by the connection cap as well.
    incoming: Arc<AtomicUsize>,
    /// Wakes the timer task when the engine may have a new deadline.
    timer: Arc<tokio::sync::Notify>,
    /// Stops the timer task when the channel goes.
    timer_stop: CancellationToken,
    /// How many connections are in `State::shed` (read without the lock).
    shedding: AtomicUsize,
}

static REGISTRY: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());
static NEXT_NAME: AtomicU64 = AtomicU64::new(1);

/// Every live channel, in creation order (tcllib's `channels`).
pub fn channels() -> Vec<Channel> {
    let mut reg = lock(&REGISTRY);
    reg.retain(|w| w.strong_count() > 0);
    reg.iter()
        .filter_map(Weak::upgrade)
        .map(|inner| Channel { inner })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in user code never happens under our locks; if one did, the
    // state is still consistent enough to go on with.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ip_text(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// A comm channel: a listener (optional), its connections, and the API of
/// tcllib's channel command. Cheap to clone; the channel lives while any
/// handle does, or until [`destroy`](Channel::destroy).
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.inner.name)
            .field("id", &self.self_id())
            .finish()
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Channel) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Channel {
    /// Creates a channel and starts listening as configured. Must be called
    /// within a tokio runtime, whose tasks will carry the channel.
    pub async fn new(config: Config) -> Result<Channel, Error> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("channel{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed)));
        let evaluator = config
            .evaluator
            .clone()
            .unwrap_or_else(|| Arc::new(crate::Dispatcher::new()));
        let engine_config = config.engine_config(Id::port(0));
        let inner = Arc::new(Inner {
            name,
            state: Mutex::new(State {
                engine: Engine::new(engine_config),
                config: config.clone(),
                evaluator,
                conns: OwnKeyMap::default(),
                waiters: OwnKeyMap::default(),
                lost_callbacks: HashMap::new(),
                next_token: 0,
                listener: None,
                port: 0,
                destroyed: false,
                shed: OwnKeyMap::default(),
            }),
            hooks: RwLock::new(Arc::new(Hooks::default())),
            handle: tokio::runtime::Handle::current(),
            incoming: Arc::new(AtomicUsize::new(0)),
            timer: Arc::new(tokio::sync::Notify::new()),
            timer_stop: CancellationToken::new(),
            shedding: AtomicUsize::new(0),
        });
        inner.handle.spawn(timer_loop(
            Arc::downgrade(&inner),
            inner.timer.clone(),
            inner.timer_stop.clone(),
        ));
        if config.listen {
            let (port, listeners) = bind(&config).await?;
            inner.install_listeners(port, listeners);
        }
        lock(&REGISTRY).push(Arc::downgrade(&inner));
        debug!(chan = %inner.name, id = %inner.self_id(), "channel created");
        Ok(Channel { inner })
    }

    /// The channel's name (what hooks see as `chan`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The channel's own id: its listening port, or 0 when not listening.
    pub fn self_id(&self) -> Id {
        self.inner.self_id()
    }

    /// The listening port (0 when not listening).
    pub fn port(&self) -> u16 {
        lock(&self.inner.state).port
    }

    /// The current configuration.
    pub fn config(&self) -> Config {
        lock(&self.inner.state).config.clone()
    }

    /// The last serial used.
    pub fn serial(&self) -> u64 {
        lock(&self.inner.state).engine.serial()
    }

    /// Own id followed by the id of every connection (tcllib's `interps`).
    pub fn interps(&self) -> Vec<Id> {
        let st = lock(&self.inner.state);
        let mut v = vec![Id::port(st.port)];
        v.extend(st.engine.ids());
        v
    }

    /// Opens a connection to `id` without sending (runs the `connecting`
    /// hook, and `connected` if a new connection is opened).
    pub async fn connect(&self, id: impl Into<Id>) -> Result<(), Error> {
        Inner::connect(&self.inner, &id.into()).await.map(|_| ())
    }

    /// Sends a script and waits for its result (tcllib's `send`).
    pub async fn send(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
    ) -> Result<String, Error> {
        outcome_to_result(self.call(id, script, None).await?)
    }

    /// Like [`send`](Channel::send), but fails with [`Error::Timeout`] if no
    /// answer comes within `timeout`; a late answer is dropped.
    pub async fn send_timeout(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
        timeout: Duration,
    ) -> Result<String, Error> {
        outcome_to_result(self.call(id, script, Some(timeout)).await?)
    }

    /// Sends a script and returns the remote outcome as it came (code,
    /// result, errorinfo, errorcode) instead of mapping it to a result.
    /// Dropping the future stops waiting; a late answer is dropped.
    pub async fn call(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
        timeout: Option<Duration>,
    ) -> Result<Outcome, Error> {
        let id = id.into();
        let (tx, rx) = oneshot::channel();
        let serial = Inner::start(
            &self.inner,
            &id,
            RequestKind::Send,
            script.into(),
            Some(Waiter::Sync(tx)),
        )
        .await?;
        let mut guard = CancelGuard {
            inner: &self.inner,
            serial,
            armed: true,
        };
        let got = match timeout {
            None => rx.await,
            Some(t) => match tokio::time::timeout(t, rx).await {
                Ok(r) => r,
                Err(_) => return Err(Error::Timeout { id, timeout: t }),
            },
        };
        guard.armed = false;
        match got {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(reason)) => Err(Error::Lost(reason)),
            Err(_) => Err(Error::Destroyed),
        }
    }

    /// Sends a script without waiting for, or getting, any answer (tcllib's
    /// `send -async`).
    pub async fn send_async(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
    ) -> Result<(), Error> {
        Inner::start(
            &self.inner,
            &id.into(),
            RequestKind::Async,
            script.into(),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Sends a script; `callback` runs with the answer, or with code `None`
    /// and the reason if the connection is lost first (tcllib's `send
    /// -command`). Returns the serial.
    pub async fn send_callback(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
        callback: impl FnOnce(CallbackInfo) + Send + 'static,
    ) -> Result<u64, Error> {
        let waiter = Waiter::Callback(Box::new(callback));
        Inner::start(
            &self.inner,
            &id.into(),
            RequestKind::Command,
            script.into(),
            Some(waiter),
        )
        .await
    }

    /// Closes the connection to `id` as lost with `Connection shutdown by
    /// request`; returns that reason, or `None` if there was no connection.
    pub fn shutdown(&self, id: impl Into<Id>) -> Option<&'static str> {
        let id = id.into();
        self.inner.act(|e| e.shutdown(&id))
    }

    /// Closes every connection with `Connection aborted by request`.
    pub fn abort(&self) {
        self.inner.act(Engine::abort);
    }

    /// Closes the listener and every connection, and removes the channel
    /// from [`channels`]. Later sends fail with [`Error::Destroyed`].
    pub fn destroy(&self) {
        if let Some(l) = self.take_down() {
            l.cancel();
        }
    }

    /// Like [`destroy`](Channel::destroy), and returns once the listening
    /// sockets are closed, so that the port can be bound again at once.
    pub async fn close(&self) {
        if let Some(l) = self.take_down() {
            l.close().await;
        }
    }

    /// Destroys the channel but for its listener, which is returned to be
    /// stopped.
    fn take_down(&self) -> Option<Listener> {
        let mut st = lock(&self.inner.state);
        if st.destroyed {
            return None;
        }
        st.destroyed = true;
        let listener = st.listener.take();
        self.inner.timer_stop.cancel();
        st.port = 0;
        st.engine.abort();
        let mut work = self.inner.drain(&mut st);
        drop(st);
        lock(&REGISTRY).retain(|w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.inner)));
        self.inner.run(&mut work);
        debug!(chan = %self.inner.name, "channel destroyed");
        listener
    }

    /// Whether [`destroy`](Channel::destroy) was called.
    pub fn is_destroyed(&self) -> bool {
        lock(&self.inner.state).destroyed
    }

    /// Changes the configuration. A change of port, listen, local or
    /// transport aborts every connection and re-listens (as tcllib does); if
    /// the new listener cannot be opened the channel keeps its old settings
    /// and listener, and the error is returned.
    pub async fn configure(&self, change: impl FnOnce(Config) -> Config) -> Result<(), Error> {
        let old = self.config();
        if self.is_destroyed() {
            return Err(Error::Destroyed);
        }
        let mut new = change(old.clone());
        let relisten = new.port != old.port
            || new.listen != old.listen
            || new.local != old.local
            || !same_transport(&new.transport, &old.transport);
        if relisten {
            self.abort();
            let (old_port, listener) = {
                let mut st = lock(&self.inner.state);
                (std::mem::replace(&mut st.port, 0), st.listener.take())
            };
            if let Some(l) = listener {
                l.close().await;
            }
            if !new.listen {
                // As tcllib: not listening means id 0, whatever the port said.
                new.port = Port::Any;
            }
            if new.listen {
                match bind(&new).await {
                    Ok((port, listeners)) => self.inner.install_listeners(port, listeners),
                    Err(e) => {
                        if old.listen {
                            // Re-open the old listener on its old port.
                            let back = old.clone().port(old_port);
                            if let Ok((port, listeners)) = bind(&back).await {
                                self.inner.install_listeners(port, listeners);
                            }
                        }
                        return Err(e);
                    }
                }
            }
        }
        let mut st = lock(&self.inner.state);
        if let Some(e) = &new.evaluator {
            st.evaluator = e.clone();
        }
        st.engine.set_limits(&new.engine_config(Id::port(0)));
        if st.port != 0 {
            new.port = Port::Fixed(st.port);
        }
        st.config = new;
        Ok(())
    }

    /// Replaces the evaluator of received scripts.
    pub fn set_evaluator(&self, evaluator: impl Evaluator) {
        let e: Arc<dyn Evaluator> = Arc::new(evaluator);
        let mut st = lock(&self.inner.state);
        st.config.evaluator = Some(e.clone());
        st.evaluator = e;
    }

    /// Changes the hooks: the new set is swapped in whole, so readers
    /// take a cheap snapshot.
    fn set_hooks(&self, f: impl FnOnce(&mut Hooks)) {
        let mut guard = self.inner.hooks.write().unwrap_or_else(|e| e.into_inner());
        let mut hooks = Hooks::clone(&guard);
        f(&mut hooks);
        *guard = Arc::new(hooks);
    }

    /// Sets the `connecting` hook: runs at the start of every send and
    /// connect; an `Err` refuses with that message.
    pub fn on_connecting(
        &self,
        f: impl Fn(&ConnectingEvent) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.set_hooks(|h| h.connecting = Some(Arc::new(f)));
    }

    /// Sets the `connected` hook: runs when a new outgoing connection is
    /// open, before the handshake; an `Err` closes it and refuses.
    pub fn on_connected(
        &self,
        f: impl Fn(&ConnectedEvent) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.set_hooks(|h| h.connected = Some(Arc::new(f)));
    }

    /// Sets the `incoming` hook: runs when a peer connects, before its
    /// handshake; an `Err` closes the connection.
    pub fn on_incoming(
        &self,
        f: impl Fn(&IncomingEvent) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.set_hooks(|h| h.incoming = Some(Arc::new(f)));
    }

    /// Sets the `eval` hook: runs before a received script is evaluated;
    /// may rewrite it, answer instead, or fail it.
    pub fn on_eval(&self, f: impl Fn(&mut EvalEvent) -> EvalDecision + Send + Sync + 'static) {
        self.set_hooks(|h| h.eval = Some(Arc::new(f)));
    }

    /// Sets the `reply` hook: runs when a sync send's answer arrives; may
    /// change the outcome the caller gets.
    pub fn on_reply(&self, f: impl Fn(&mut ReplyEvent) + Send + Sync + 'static) {
        self.set_hooks(|h| h.reply = Some(Arc::new(f)));
    }

    /// Sets the `callback` hook: runs when a `send_callback` answer arrives;
    /// may change what the callback gets.
    pub fn on_callback(&self, f: impl Fn(&mut ReplyEvent) + Send + Sync + 'static) {
        self.set_hooks(|h| h.callback = Some(Arc::new(f)));
    }

    /// Sets the `lost` hook: runs after a connection went away and its
    /// pending calls were failed.
    pub fn on_lost(&self, f: impl Fn(&LostEvent) + Send + Sync + 'static) {
        self.set_hooks(|h| h.lost = Some(Arc::new(f)));
    }

    /// Removes a hook.
    pub fn clear_hook(&self, kind: HookKind) {
        self.set_hooks(|h| h.clear(kind));
    }
}

fn same_transport(a: &Transport, b: &Transport) -> bool {
    match (a, b) {
        (Transport::Tcp, Transport::Tcp) => true,
        (Transport::Tls(x), Transport::Tls(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

struct CancelGuard<'a> {
    inner: &'a Arc<Inner>,
    serial: u64,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = lock(&self.inner.state);
            st.engine.cancel(self.serial);
            st.waiters.remove(&self.serial);
        }
    }
}

/// Opens the listening sockets for `config`: loopback (IPv4, and IPv6 on
/// the same port when available) if local, else every interface.
async fn bind(config: &Config) -> Result<(u16, Vec<TcpListener>), Error> {
    let listen_err = |e: std::io::Error| Error::Listen(io_text(&e));
    match config.port {
        Port::High => {
            let mut port = 10000 + (std::process::id() % 32768) as u16;
            let mut last = None;
            for _ in 0..1000 {
                match bind_port(config.local, port) {
                    Ok(r) => return Ok(r),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
                    Err(e) => return Err(listen_err(e)),
                }
                port = port.checked_add(1).unwrap_or(10000);
            }
            Err(listen_err(
                last.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into()),
            ))
        }
        Port::Any => bind_port(config.local, 0).map_err(listen_err),
        Port::Fixed(p) => bind_port(config.local, p).map_err(listen_err),
    }
}

fn bind_port(local: bool, port: u16) -> std::io::Result<(u16, Vec<TcpListener>)> {
    let open = |addr, v6only| transport::open_listener(addr, v6only, 1024);
    let mut listeners = Vec::new();
    if local {
        let v4 = open(SocketAddr::from(([127, 0, 0, 1], port)), None)?;
        let port = v4.local_addr()?.port();
        listeners.push(v4);
        // IPv6 loopback on the same port, where the machine has it.
        if let Ok(v6) = open(
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            Some(true),
        ) {
            listeners.push(v6);
        }
        Ok((port, listeners))
    } else {
        let any = match open(
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
            Some(false),
        ) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(e),
            Err(_) => open(SocketAddr::from(([0, 0, 0, 0], port)), None)?,
        };
        let port = any.local_addr()?.port();
        Ok((port, vec![any]))
    }
}

impl Inner {
    fn self_id(&self) -> Id {
        Id::port(lock(&self.state).port)
    }

    fn hooks(&self) -> Arc<Hooks> {
        self.hooks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn conn_open(&self, conn: ConnId) -> bool {
        lock(&self.state).engine.is_open(conn)
    }

    /// Registers `f` to run when `conn` goes (at once if it has gone).
    /// Returns a token for [`forget_conn_lost`](Inner::forget_conn_lost).
    pub(crate) fn on_conn_lost(self: &Arc<Self>, conn: ConnId, f: LostCallback) -> Option<u64> {
        let mut st = lock(&self.state);
        if st.engine.is_open(conn) {
            st.next_token += 1;
            let token = st.next_token;
            st.lost_callbacks.entry(conn).or_default().push((token, f));
            Some(token)
        } else {
            drop(st);
            f();
            None
        }
    }

    /// Withdraws callbacks registered with [`on_conn_lost`](Inner::on_conn_lost).
    pub(crate) fn forget_conn_lost(&self, conn: ConnId, tokens: &[u64]) {
        let mut st = lock(&self.state);
        if let Some(v) = st.lost_callbacks.get_mut(&conn) {
            v.retain(|(t, _)| !tokens.contains(t));
        }
    }

    fn install_listeners(self: &Arc<Self>, port: u16, listeners: Vec<TcpListener>) {
        let stop = CancellationToken::new();
        let tasks = listeners
            .into_iter()
            .map(|l| {
                self.handle
                    .spawn(accept_loop(Arc::downgrade(self), l, stop.clone()))
            })
            .collect();
        let mut st = lock(&self.state);
        st.port = port;
        // As tcllib: the port got from the OS is kept, so a re-listen (say
        // for a change of -local) keeps the id.
        st.config.port = Port::Fixed(port);
        st.engine.set_own_id(Id::port(port));
        if let Some(old) = st.listener.replace(Listener { stop, tasks }) {
            old.cancel();
        }
    }

    /// Drains the engine's actions: writes are queued now (under the lock,
    /// so they keep the engine's order); the rest is returned to run after
    /// the lock is released.
    fn drain(&self, st: &mut State) -> Work {
        let mut work = Work::default();
        self.drain_with(st, false, &mut work);
        work
    }

    /// [`drain`](Inner::drain); with `batch`, writes always go through the
    /// writer task, which coalesces them (for bursts of async sends, where
    /// throughput matters more than the latency of one message).
    /// The deferred work is added to `work`, whose buffer a caller may
    /// reuse from one drain to the next.
    fn drain_with(&self, st: &mut State, batch: bool, work: &mut Work) {
        let deferred = &mut work.items;
        let mut closing: Vec<(ConnId, Vec<(u64, LostCallback)>)> = Vec::new();
        while let Some(action) = st.engine.poll_action() {
            match action {
                Action::Write { conn, bytes } => {
                    let Some(c) = st.conns.get(&conn) else {
                        continue;
                    };
                    // Answers to the requests of one read are held and
                    // written together once they have all run.
                    let hold = holding(self, conn);
                    // In order: only when nothing is queued (so no write is
                    // in flight or claimed) may we write directly; the write
                    // itself is made after the lock (see `Claimed`).
                    if let Some(sock) = c
                        .direct
                        .as_ref()
                        .filter(|_| !batch && !hold && c.outbox.queued.load(Ordering::Acquire) == 0)
                    {
                        c.outbox.queued.fetch_add(bytes.len(), Ordering::AcqRel);
                        c.outbox.claimed.store(true, Ordering::Release);
                        work.writes.push(Claimed {
                            sock: sock.clone(),
                            outbox: c.outbox.clone(),
                            bytes,
                        });
                        continue;
                    }
                    let queued =
                        c.outbox.queued.fetch_add(bytes.len(), Ordering::AcqRel) + bytes.len();
                    if hold {
                        c.outbox.push_quiet(bytes);
                    } else {
                        c.outbox.push(bytes);
                    }
                    // The engine decides whether the peer reads; if not, the
                    // Close it queues frees what the outbox holds.
                    if !st.engine.outbound(conn, queued) {
                        warn!(chan = %self.name, %conn, queued, "peer does not read; dropping its connection");
                    }
                }
                Action::Close { conn } => {
                    if let Some(c) = st.conns.remove(&conn) {
                        c.stop.cancel();
                    }
                    // Run at the `Lost` that follows, or (for a connection
                    // closed in its handshake, which has none) at the end.
                    if let Some(cbs) = st.lost_callbacks.remove(&conn) {
                        closing.push((conn, cbs));
                    }
                }
                Action::Established { conn, id, version } => {
                    trace!(chan = %self.name, %conn, %id, version, "connection established");
                }
                Action::Evaluate(request) => {
                    if work.evaluator.is_none() {
                        work.evaluator = Some(st.evaluator.clone());
                    }
                    deferred.push(Deferred::Evaluate(request));
                }
                Action::Complete {
                    serial,
                    id,
                    outcome,
                    ..
                } => {
                    if let Some(waiter) = st.waiters.remove(&serial) {
                        deferred.push(Deferred::Complete {
                            serial,
                            id,
                            outcome,
                            waiter,
                        });
                    }
                }
                Action::Lost {
                    conn,
                    id,
                    loss,
                    failed,
                } => {
                    if !matches!(loss, Loss::Closed | Loss::Shutdown | Loss::Abort) {
                        warn!(chan = %self.name, %conn, %id, "connection closed: {loss}");
                    }
                    if matches!(
                        loss,
                        Loss::Outbound { .. } | Loss::Budget { .. } | Loss::Evicted
                    ) {
                        st.shed.insert(conn, ());
                        self.shedding.fetch_add(1, Ordering::AcqRel);
                    }
                    let waiters = failed
                        .iter()
                        .filter_map(|f| st.waiters.remove(&f.serial).map(|w| (f.serial, w)))
                        .collect();
                    let callbacks = match closing.iter().position(|(c, _)| *c == conn) {
                        Some(i) => closing
                            .swap_remove(i)
                            .1
                            .into_iter()
                            .map(|(_, f)| f)
                            .collect(),
                        None => Vec::new(),
                    };
                    deferred.push(Deferred::Lost {
                        id,
                        loss,
                        waiters,
                        callbacks,
                    });
                }
                Action::Refused { conn, reason } => {
                    if (reason.is_protocol() || reason.is_auth()) && !st.config.silent {
                        warn!(chan = %self.name, %conn, "{reason}");
                    } else {
                        debug!(chan = %self.name, %conn, "{reason}");
                    }
                }
            }
        }
        for (_, callbacks) in closing {
            deferred.push(Deferred::Callbacks(
                callbacks.into_iter().map(|(_, f)| f).collect(),
            ));
        }
    }

    /// Runs what [`drain`](Inner::drain) deferred, with no lock held.
    /// Leaves `work` empty, its buffer kept for reuse.
    fn run(self: &Arc<Self>, work: &mut Work) {
        work.writes.make();
        if work.items.is_empty() {
            return;
        }
        let hooks = self.hooks();
        let evaluator = work.evaluator.take();
        for d in work.items.drain(..) {
            match d {
                Deferred::Evaluate(request) => {
                    if self.shedding.load(Ordering::Acquire) > 0
                        && lock(&self.state).shed.contains_key(&request.conn)
                    {
                        continue;
                    }
                    if let Some(e) = &evaluator {
                        self.evaluate(&hooks, request, e.as_ref());
                    }
                }
                Deferred::Complete {
                    serial,
                    id,
                    outcome,
                    waiter,
                } => {
                    let event = |outcome| ReplyEvent {
                        chan: self.name.clone(),
                        id,
                        serial,
                        outcome,
                    };
                    match waiter {
                        Waiter::Sync(tx) => {
                            let outcome = match &hooks.reply {
                                // No hook to see it: the outcome goes as it came.
                                None => outcome,
                                Some(h) => {
                                    let mut ev = event(outcome);
                                    h(&mut ev);
                                    ev.outcome
                                }
                            };
                            let _ = tx.send(Ok(outcome));
                        }
                        Waiter::Callback(f) => {
                            let mut ev = event(outcome);
                            if let Some(h) = &hooks.callback {
                                h(&mut ev);
                            }
                            let ReplyEvent {
                                chan,
                                id,
                                serial,
                                outcome,
                            } = ev;
                            f(CallbackInfo {
                                id,
                                serial,
                                chan,
                                code: Some(outcome.code),
                                errorcode: outcome.errorcode,
                                errorinfo: outcome.errorinfo,
                                result: outcome.result,
                            });
                        }
                    }
                }
                Deferred::Callbacks(callbacks) => {
                    for f in callbacks {
                        f();
                    }
                }
                Deferred::Lost {
                    id,
                    loss,
                    waiters,
                    callbacks,
                } => {
                    for (serial, waiter) in waiters {
                        match waiter {
                            Waiter::Sync(tx) => {
                                let _ = tx.send(Err(Failure::from_loss(&loss).message));
                            }
                            Waiter::Callback(f) => {
                                let args = CallbackArgs::from_loss(&loss);
                                f(CallbackInfo {
                                    id: id.clone(),
                                    serial,
                                    chan: self.name.clone(),
                                    code: None,
                                    errorcode: args.errorcode,
                                    errorinfo: args.errorinfo,
                                    result: args.result,
                                });
                            }
                        }
                    }
                    let reason = loss.to_string();
                    for f in callbacks {
                        f();
                    }
                    if let Some(h) = &hooks.lost {
                        h(&LostEvent {
                            chan: self.name.clone(),
                            id,
                            reason,
                        });
                    }
                }
            }
        }
    }

    fn evaluate(self: &Arc<Self>, hooks: &Hooks, request: Request, evaluator: &dyn Evaluator) {
        let Request {
            conn,
            id,
            kind,
            serial,
            script,
        } = request;
        let responder = Responder {
            inner: Arc::downgrade(self),
            conn,
            kind,
            // An async request is never answered: its responder needs no serial.
            serial: if kind == RequestKind::Async {
                Serial(String::new())
            } else {
                serial.clone()
            },
            done: false,
            lost_tokens: std::sync::Mutex::new(Vec::new()),
        };
        let (id, serial, script) = match &hooks.eval {
            None => (id, serial, script),
            Some(h) => {
                let mut ev = EvalEvent {
                    chan: self.name.clone(),
                    id,
                    kind,
                    serial,
                    script,
                };
                match h(&mut ev) {
                    EvalDecision::Continue => (ev.id, ev.serial, ev.script),
                    EvalDecision::Answer(result) => {
                        responder.ok(result);
                        return;
                    }
                    EvalDecision::Fail(outcome) => {
                        responder.respond(outcome);
                        return;
                    }
                }
            }
        };
        let incoming = Incoming {
            id,
            kind,
            serial,
            script,
            channel: Channel {
                inner: self.clone(),
            },
        };
        evaluator.evaluate(incoming, responder);
    }

    pub(crate) fn respond(
        self: &Arc<Self>,
        conn: ConnId,
        kind: RequestKind,
        serial: &Serial,
        outcome: &Outcome,
    ) -> bool {
        self.act(|e| e.respond(conn, kind, serial, outcome))
    }

    /// Feeds bytes from a connection's reader; `work` is the reader's
    /// buffer for the deferred work, reused from one read to the next.
    fn feed(self: &Arc<Self>, conn: ConnId, bytes: &[u8], work: &mut Work) {
        let mut st = lock(&self.state);
        st.engine.received(conn, bytes);
        self.drain_with(&mut st, false, work);
        drop(st);
        let requests = work
            .items
            .iter()
            .filter(|d| matches!(d, Deferred::Evaluate(_)))
            .count();
        if requests < 2 {
            self.run(work);
            return;
        }
        // Several requests came in one read (a pipelining peer): their
        // answers are written together, in one write, once all have run
        // (those answered now; later ones go as usual).
        let _hold = Hold::start(self, conn);
        self.run(work);
    }

    /// Writes what was held for `conn` (see [`Hold`]): directly when the
    /// writer has nothing in flight, else through it.
    fn flush_held(&self, conn: ConnId) {
        let st = lock(&self.state);
        let Some(c) = st.conns.get(&conn) else {
            return;
        };
        let mut held = lock(&c.outbox.bytes);
        if held.is_empty() {
            return;
        }
        if let Some(sock) = &c.direct
            && c.outbox.queued.load(Ordering::Acquire) == held.len()
        {
            c.outbox.write_held(&mut held, sock);
        }
        let rest = !held.is_empty();
        drop(held);
        if rest {
            c.outbox.ready.notify_one();
        }
    }

    fn closed(self: &Arc<Self>, conn: ConnId) {
        if self.shedding.load(Ordering::Acquire) > 0
            && lock(&self.state).shed.remove(&conn).is_some()
        {
            self.shedding.fetch_sub(1, Ordering::AcqRel);
        }
        self.act(|e| e.closed(conn));
    }

    /// Tells the engine something (`f`), then carries out what it asks:
    /// writes under the lock, the rest (user code) after it.
    fn act<R>(self: &Arc<Self>, f: impl FnOnce(&mut Engine) -> R) -> R {
        let mut st = lock(&self.state);
        let r = f(&mut st.engine);
        let mut work = self.drain(&mut st);
        drop(st);
        self.run(&mut work);
        r
    }

    async fn connect(self: &Arc<Self>, id: &Id) -> Result<ConnId, Error> {
        if let Some(h) = &self.hooks().connecting {
            h(&ConnectingEvent {
                chan: self.name.clone(),
                id: id.clone(),
            })
            .map_err(Error::Connect)?;
        }
        let transport = {
            let st = lock(&self.state);
            if st.destroyed {
                return Err(Error::Destroyed);
            }
            if let Some(c) = st.engine.connection(id) {
                return Ok(c);
            }
            st.config.transport.clone()
        };
        if id.is_anonymous() {
            return Err(Error::Connect(
                "Remote comm is anonymous; cannot connect".into(),
            ));
        }
        let host = id.host();
        let port = id.port_number().ok_or_else(|| {
            Error::Connect(format!("expected integer but got \"{}\"", id.port_text()))
        })?;
        // The socket must belong to the channel's runtime (the caller may
        // be polling this on another one), so connect there.
        let me = self.clone();
        let target = id.clone();
        let opened = self.handle.spawn(async move {
            let stream = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| Error::Connect(format!("couldn't open socket: {}", io_text(&e))))?;
            if let Some(h) = &me.hooks().connected {
                let ev = ConnectedEvent {
                    chan: me.name.clone(),
                    id: target,
                    host: host.clone(),
                    port,
                };
                h(&ev).map_err(Error::Connect)?;
            }
            transport::wrap(&transport, stream, Some(&host))
                .await
                .map_err(|e| Error::Connect(format!("couldn't open socket: {}", io_text(&e))))
        });
        let halves = opened
            .await
            .map_err(|e| Error::Connect(format!("connect task failed: {e}")))??;
        let mut st = lock(&self.state);
        if st.destroyed {
            return Err(Error::Destroyed);
        }
        // Another task may have connected meanwhile: keep the first.
        if let Some(c) = st.engine.connection(id) {
            return Ok(c);
        }
        let conn = st.engine.outgoing(id.clone());
        self.start_conn(&mut st, conn, halves);
        let mut work = self.drain(&mut st);
        drop(st);
        self.run(&mut work);
        debug!(chan = %self.name, %id, %conn, "connected");
        Ok(conn)
    }

    async fn start(
        self: &Arc<Self>,
        id: &Id,
        kind: RequestKind,
        script: Script,
        waiter: Option<Waiter>,
    ) -> Result<u64, Error> {
        // A send from code run for a read whose answers are held (see
        // `Hold`): what is held goes out now, and nothing more is held, so
        // that the request is not queued behind answers that wait for it.
        release_held();
        // The connection can be lost between connecting and sending: then
        // connect again (three times at most). Without a `connecting` hook,
        // an existing connection is used as found under the one lock.
        let hooked = self
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .connecting
            .is_some();
        let (mut connects, mut must_connect) = (0, hooked);
        loop {
            if must_connect {
                if connects == 3 {
                    return Err(Error::Lost(tclcomm_wire::engine::REASON_LOST.into()));
                }
                connects += 1;
                Inner::connect(self, id).await?;
            }
            let mut st = lock(&self.state);
            if st.destroyed {
                return Err(Error::Destroyed);
            }
            if st.engine.connection(id).is_none() {
                must_connect = true;
                continue;
            }
            let serial = match st.engine.send(id, kind, script.0) {
                Ok(s) => s,
                Err(e) => return Err(Error::Lost(e.to_string())),
            };
            // Sends whose caller does not wait (async, and callbacks) go
            // through the writer, which coalesces a burst of them.
            let batch = kind == RequestKind::Async || matches!(waiter, Some(Waiter::Callback(_)));
            if let Some(w) = waiter {
                st.waiters.insert(serial, w);
            }
            let mut work = Work::default();
            self.drain_with(&mut st, batch, &mut work);
            drop(st);
            self.run(&mut work);
            return Ok(serial);
        }
    }

    fn start_conn(self: &Arc<Self>, st: &mut State, conn: ConnId, halves: Halves) {
        if !st.engine.is_open(conn) {
            // Refused at once (the connection cap): dropping the halves closes it.
            return;
        }
        let outbox = Arc::new(Outbox::default());
        let stop = Arc::new(Stop::default());
        let me = Arc::downgrade(self);
        let (reader, writer, direct) = match halves {
            Halves::Tcp(sock) => (
                Reader::Tcp(sock.clone()),
                Writer::Tcp(sock.clone()),
                Some(sock),
            ),
            Halves::Boxed(r, w) => (Reader::Boxed(r), Writer::Boxed(w), None),
        };
        self.handle
            .spawn(write_loop(writer, outbox.clone(), stop.clone()));
        self.handle.spawn(read_loop(me, conn, reader, stop.clone()));
        st.conns.insert(
            conn,
            ConnEntry {
                direct,
                outbox,
                stop,
            },
        );
    }

    fn accept(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let (limits, transport) = {
            let st = lock(&self.state);
            (st.config.limits.clone(), st.config.transport.clone())
        };
        if self.incoming.load(Ordering::Acquire) >= limits.max_connections {
            warn!(chan = %self.name, %peer, "too many connections; refusing");
            return;
        }
        let addr = ip_text(peer.ip());
        if let Some(h) = &self.hooks().incoming {
            let ev = IncomingEvent {
                chan: self.name.clone(),
                addr: addr.clone(),
                remport: peer.port(),
            };
            if let Err(e) = h(&ev) {
                warn!(chan = %self.name, %peer, "incoming connection refused: {e}");
                return;
            }
        }
        let local = stream
            .local_addr()
            .map(|a| ip_text(a.ip()))
            .unwrap_or_default();
        let count = IncomingGuard::new(self.incoming.clone());
        let me = self.clone();
        self.handle.spawn(async move {
            let wrapped = tokio::time::timeout(
                limits.handshake_timeout,
                transport::wrap(&transport, stream, None),
            )
            .await;
            let halves = match wrapped {
                Ok(Ok(halves)) => halves,
                Ok(Err(e)) => return debug!(%peer, "transport handshake failed: {e}"),
                Err(_) => return debug!(%peer, "transport handshake timed out"),
            };
            let mut st = lock(&me.state);
            if st.destroyed {
                return;
            }
            // From here the engine counts it (and decides who gives way
            // at the cap).
            drop(count);
            let now = tokio::time::Instant::now().into_std();
            let conn = st.engine.accepted(&addr, peer.port(), &local, now);
            me.start_conn(&mut st, conn, halves);
            let mut work = me.drain(&mut st);
            drop(st);
            me.timer.notify_one();
            me.run(&mut work);
        });
    }
}

struct IncomingGuard(Arc<AtomicUsize>);

impl IncomingGuard {
    fn new(count: Arc<AtomicUsize>) -> IncomingGuard {
        count.fetch_add(1, Ordering::AcqRel);
        IncomingGuard(count)
    }
}

impl Drop for IncomingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.timer_stop.cancel();
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = st.listener.take() {
            l.cancel();
        }
        for (_, c) in st.conns.drain() {
            c.stop.cancel();
        }
    }
}

async fn accept_loop(inner: Weak<Inner>, listener: TcpListener, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        let Some(inner) = inner.upgrade() else { return };
        match accepted {
            Ok((stream, peer)) => inner.accept(stream, peer),
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                warn!(chan = %inner.name, "accept failed: {e}");
                drop(inner);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Below this many bytes, a read that did not fill the buffer is taken to
/// have drained the socket (see [`Reader::read`]).
const SMALL_READ: usize = 16 * 1024;

/// The read side of a connection.
enum Reader {
    Tcp(Arc<TcpStream>),
    Boxed(BoxRead),
}

impl Reader {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Reader::Tcp(s) => loop {
                // The reader's own readiness slot (this task is the only
                // one that waits to read): `readable()` would queue a waiter
                // in the socket's list, under its lock, at every wait.
                std::future::poll_fn(|cx| s.poll_read_ready(cx)).await?;
                // A small read that did not fill the buffer drained the
                // socket: clear its readiness now (by answering WouldBlock
                // to `try_io`), as tokio's own `poll_read` does after a
                // short read, instead of paying one more `recv` that fails
                // before the next wait (epoll and kqueue report new data as
                // a new event). Not after a big read: in a stream of data
                // the next `recv` usually finds more without a trip to the
                // poller.
                let mut got = 0;
                let res = s.try_io(tokio::io::Interest::READABLE, || {
                    use std::io::Read;
                    let n = (&*socket2::SockRef::from(&**s)).read(buf)?;
                    got = n;
                    if cfg!(any(
                        target_os = "linux",
                        target_os = "macos",
                        target_os = "freebsd"
                    )) && n > 0
                        && n < buf.len().min(SMALL_READ)
                    {
                        Err(std::io::ErrorKind::WouldBlock.into())
                    } else {
                        Ok(n)
                    }
                });
                match res {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if got > 0 {
                            return Ok(got);
                        }
                    }
                    r => return r,
                }
            },
            Reader::Boxed(r) => r.read(buf).await,
        }
    }
}

/// The write side of a connection, used by its writer task.
enum Writer {
    Tcp(Arc<TcpStream>),
    Boxed(BoxWrite),
}

impl Writer {
    async fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Tcp(s) => {
                while !buf.is_empty() {
                    // The writer task is the only one that waits to write
                    // (a claimed write never waits): its own readiness slot.
                    std::future::poll_fn(|cx| s.poll_write_ready(cx)).await?;
                    match s.try_write(buf) {
                        Ok(n) => buf = &buf[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Writer::Boxed(w) => {
                w.write_all(buf).await?;
                w.flush().await
            }
        }
    }

    async fn shutdown(&mut self) {
        match self {
            // Dropping the last handle closes the socket; shut the write
            // side now so the peer sees EOF even while the reader lingers.
            Writer::Tcp(s) => {
                let _ = socket2::SockRef::from(&**s).shutdown(std::net::Shutdown::Write);
            }
            Writer::Boxed(w) => {
                let _ = w.shutdown().await;
            }
        }
    }
}

/// The most bytes given to the engine at once (see [`read_loop`]).
const FEED_PIECE: usize = 64 * 1024;

async fn read_loop(inner: Weak<Inner>, conn: ConnId, mut r: Reader, stop: Arc<Stop>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut work = Work::default();
    loop {
        let read = tokio::select! {
            biased;
            _ = std::future::poll_fn(|cx| stop.poll_reader(cx)) => {
                // Closed by the engine (then this is a no-op) or by a failed write.
                if let Some(inner) = inner.upgrade() {
                    inner.closed(conn);
                }
                return;
            }
            res = r.read(&mut buf) => res,
        };
        let Some(inner) = inner.upgrade() else { return };
        match read {
            Ok(0) | Err(_) => {
                inner.closed(conn);
                return;
            }
            Ok(n) => {
                // In pieces, so that the work of one piece stays small
                // (and in cache) whatever the size of the read.
                for piece in buf[..n].chunks(FEED_PIECE) {
                    inner.feed(conn, piece, &mut work);
                }
                if n == buf.len() && buf.len() < (1 << 22) {
                    buf.resize(buf.len() * 4, 0);
                }
            }
        }
    }
}

/// Carries out the engine's deadlines (handshake timeouts): sleeps until
/// the engine's next one, tells it the time, and again.
async fn timer_loop(inner: Weak<Inner>, wake: Arc<tokio::sync::Notify>, stop: CancellationToken) {
    loop {
        let next = match inner.upgrade() {
            Some(i) => lock(&i.state).engine.poll_timeout(),
            None => return,
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = sleep => {
                let Some(i) = inner.upgrade() else { return };
                let now = tokio::time::Instant::now().into_std();
                i.act(|e| e.handle_timeout(now));
            }
        }
    }
}

async fn write_loop(mut w: Writer, outbox: Arc<Outbox>, stop: Arc<Stop>) {
    // After the connection is closed, what was queued before still goes
    // out, for a while: a reply followed by a shutdown is not lost.
    let linger = async {
        stop.token.cancelled().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    tokio::pin!(linger);
    let mut out = Vec::new();
    let mut wrote_last = false;
    loop {
        // Looked at before the buffer: what was queued before the close
        // is then seen, and written.
        let stopping = stop.token.is_cancelled();
        if wrote_last && !stopping {
            // Let the senders run first: under a burst more messages are
            // queued by the time this task runs again, so writes are
            // fewer and bigger, and this task parks (and is woken) less.
            tokio::task::yield_now().await;
        }
        outbox.take(&mut out);
        if out.is_empty() {
            if stopping && outbox.claimed.load(Ordering::SeqCst) {
                // A direct write claimed before the close (a reply, then
                // the close, in one drain) is being made by its claimer,
                // who has just released the channel's lock: wait until it
                // is made (the claimer wakes us; the linger bounds it)
                // before the write side is shut, or the reply would be lost.
                outbox.closing.store(true, Ordering::SeqCst);
                if outbox.claimed.load(Ordering::SeqCst) {
                    tokio::select! {
                        _ = outbox.ready.notified() => {}
                        _ = &mut linger => break,
                    }
                }
                continue;
            }
            if stopping {
                break;
            }
            wrote_last = false;
            tokio::select! {
                biased;
                _ = outbox.ready.notified() => {}
                _ = stop.token.cancelled() => {}
            }
            continue;
        }
        let wrote = tokio::select! {
            r = w.write_all(&out) => r,
            _ = &mut linger => Err(std::io::ErrorKind::TimedOut.into()),
        };
        outbox.queued.fetch_sub(out.len(), Ordering::AcqRel);
        if wrote.is_err() {
            stop.cancel();
            break;
        }
        wrote_last = true;
        if out.capacity() > (4 << 20) {
            out = Vec::new();
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
}
