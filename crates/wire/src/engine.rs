//! The channel state machine: connections, handshakes, serials, pending
//! calls, ids and loss, for one comm channel.
//!
//! The engine does no I/O. A driver tells it what happened
//! ([`Engine::outgoing`], [`Engine::accepted`], [`Engine::received`],
//! [`Engine::closed`]) and what the user asked for ([`Engine::send`],
//! [`Engine::respond`], [`Engine::shutdown`], [`Engine::abort`]), then drains
//! [`Engine::poll_action`] and carries the actions out in order: write bytes,
//! evaluate a request, complete a call, report a loss, close a transport.
//! Hooks run in the driver at the actions that correspond to them.
//!
//! Time is an input and the next deadline an output, as in quinn-proto:
//! the driver passes `now` to [`Engine::accepted`] and
//! [`Engine::handle_timeout`], and arms one timer for
//! [`Engine::poll_timeout`]. Every limit ([`EngineConfig`]) is decided here:
//! the handshake deadline, the cap on incoming connections (idle ones give
//! way first), the outbound budget per connection (drivers report what they
//! hold with [`Engine::outbound`]), the message size, the receive budget of
//! all connections together, and the nesting of received scripts.
//!
//! Where tcllib comm misbehaves (spec §11) the engine does not:
//! - every complete message received before EOF is acted on before the loss;
//! - a reply completes a call only if it arrives on the connection the call
//!   was sent on;
//! - several connections with the same id are all tracked; the first one
//!   carries new sends, and when it goes another takes its place, with
//!   nothing printed;
//! - a framing or handshake error closes only the offending connection;
//! - buffers are bounded ([`EngineConfig`]).
//!
//! ```
//! use tclcomm_wire::engine::{Action, Engine, EngineConfig, RequestKind};
//! use tclcomm_wire::{Code, Id, Outcome};
//!
//! // A client channel (id 45002) and a server channel (id 45001), wired by hand.
//! let mut client = Engine::new(EngineConfig::new(Id::port(45002)));
//! let mut server = Engine::new(EngineConfig::new(Id::port(45001)));
//! let c = client.outgoing(Id::port(45001));
//! let s = server.accepted("127.0.0.1", 50000, "127.0.0.1", std::time::Instant::now());
//! let serial = client.send(&Id::port(45001), RequestKind::Send, vec!["set a 1".into()]).unwrap();
//!
//! // Carry the client's bytes to the server.
//! while let Some(a) = client.poll_action() {
//!     if let Action::Write { bytes, .. } = a { server.received(s, &bytes); }
//! }
//! let mut request = None;
//! while let Some(a) = server.poll_action() {
//!     match a {
//!         Action::Write { bytes, .. } => client.received(c, &bytes),
//!         Action::Evaluate(r) => request = Some(r),
//!         _ => {}
//!     }
//! }
//! let r = request.unwrap();
//! assert_eq!(r.script, vec!["set a 1".to_string()]);
//! assert_eq!(r.id, Id::port(45002));
//! server.respond(r.conn, r.kind, &r.serial, &Outcome::ok("1"));
//! while let Some(a) = server.poll_action() {
//!     if let Action::Write { bytes, .. } = a { client.received(c, &bytes); }
//! }
//! let done = std::iter::from_fn(|| client.poll_action())
//!     .find_map(|a| match a { Action::Complete { serial, outcome, .. } => Some((serial, outcome)), _ => None });
//! assert_eq!(done, Some((serial, Outcome::ok("1"))));
//! ```

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use thiserror::Error;

use crate::DEFAULT_MAX_MESSAGE;
use crate::auth::{self, AuthConfig};
use crate::framer::{FrameError, Framer};
use crate::handshake::{self, HandshakeError, LineReader};
use crate::id::Id;
use crate::message::{Code, Message, Outcome, Serial};

/// Loss reason when the peer closed or the transport failed (tcllib's text).
pub const REASON_LOST: &str = "target application died or connection lost";
/// Loss reason for [`Engine::shutdown`] (tcllib's text).
pub const REASON_SHUTDOWN: &str = "Connection shutdown by request";
/// Loss reason for [`Engine::abort`] (tcllib's text).
pub const REASON_ABORT: &str = "Connection aborted by request";

/// The default bound on the first line of an incoming connection.
pub const DEFAULT_MAX_HANDSHAKE_LINE: usize = 4096;
/// The default time a connecting peer has to send its first line.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The default bound on incoming connections held at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default bound on bytes queued for a peer that does not read, beyond
/// the newest message (which always goes out whole).
pub const DEFAULT_MAX_OUTBOUND: usize = 64 << 20;
/// The default bound on received bytes held for all connections together
/// (incomplete messages and messages not yet taken out).
pub const DEFAULT_MAX_BUFFERED: usize = 512 << 20;
/// The default bound on the nesting of command substitutions (`[`) in a
/// received script. Tcl itself stops at its recursion limit (1000) with
/// `too many nested compilations`; much deeper nesting overflows the C
/// stack in Tcl's parser before that check (a crash in tcllib).
pub const DEFAULT_MAX_NESTING: usize = 1000;

/// The error message of a script nested deeper than the limit: Tcl's own
/// for nesting past its recursion limit, so callers see what Tcl would say.
pub const NESTING_MESSAGE: &str = "too many nested compilations (infinite loop?)";
/// The `errorCode` of a script nested deeper than the limit (Tcl's).
pub const NESTING_ERRORCODE: &str = "TCL LIMIT STACK";
/// From this size on, a received message's script is cut out of the
/// message in place rather than copied (see `Engine::dispatch_big`).
pub const BIG_MESSAGE: usize = 1 << 20;
/// The error a peer that does not authenticate gets for its first request
/// on a channel that requires authentication.
pub const AUTH_REQUIRED_MESSAGE: &str = "authentication required: this comm channel serves only \
     peers that prove its shared secret (tclcomm auth1); connect with tclcomm and the secret";

/// A connection handle, assigned by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn{}", self.0)
    }
}

/// Settings of one channel's engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This channel's own id (its listening port, or `0` when not listening),
    /// sent in the handshake offer.
    pub own_id: Id,
    /// The largest message accepted from a peer, in bytes.
    pub max_message: usize,
    /// The longest first line accepted from a connecting peer, in bytes.
    pub max_handshake_line: usize,
    /// How long a connecting peer may take to send its first line; then it
    /// is closed ([`Refusal::TimedOut`]).
    pub handshake_timeout: Duration,
    /// Most incoming connections held at once. At the cap, a new one takes
    /// the place of the oldest incoming connection that has not made a
    /// request yet ([`Loss::Evicted`]); if every one has, the new one is
    /// refused ([`Refusal::Full`]).
    pub max_connections: usize,
    /// Most bytes queued for a peer, beyond the newest message, before its
    /// connection is dropped ([`Loss::Outbound`]). Drivers report what they
    /// hold with [`Engine::outbound`].
    pub max_outbound: usize,
    /// Most received bytes held for all connections together; the
    /// connection whose bytes pass it is dropped ([`Loss::Budget`]).
    pub max_buffered: usize,
    /// Deepest nesting of `[` in a received script; a deeper one is answered
    /// with Tcl's `too many nested compilations` error and not evaluated.
    pub max_nesting: usize,
    /// Mutual authentication with a shared secret (`auth1`, see
    /// [`crate::auth`]); `None`: plain comm, as tcllib.
    pub auth: Option<AuthConfig>,
    /// Seed of the nonces' generator (tests); `None`: from the system.
    pub rng_seed: Option<[u8; 32]>,
    /// Accept only peers on a loopback address (tcllib's `-local 1` binds
    /// to loopback; this also refuses a peer that reaches us otherwise,
    /// say through a custom `-socketcmd` or a forwarded port).
    pub loopback_only: bool,
}

impl EngineConfig {
    /// Defaults for a channel with the given id.
    pub fn new(own_id: Id) -> EngineConfig {
        EngineConfig {
            own_id,
            max_message: DEFAULT_MAX_MESSAGE,
            max_handshake_line: DEFAULT_MAX_HANDSHAKE_LINE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_outbound: DEFAULT_MAX_OUTBOUND,
            max_buffered: DEFAULT_MAX_BUFFERED,
            max_nesting: DEFAULT_MAX_NESTING,
            auth: None,
            rng_seed: None,
            loopback_only: false,
        }
    }
}

/// Why an established connection went away. Its text is tcllib's where
/// tcllib has one: it is what a waiting caller gets as its error, a
/// callback as `-result`, and the `lost` hook as `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Loss {
    /// The peer closed, or the transport failed.
    #[error("target application died or connection lost")]
    Closed,
    /// [`Engine::shutdown`] (tcllib's `shutdown`).
    #[error("Connection shutdown by request")]
    Shutdown,
    /// [`Engine::abort`] (tcllib's `abort`, `destroy`, a re-listen).
    #[error("Connection aborted by request")]
    Abort,
    /// The peer sent bytes that are not the comm protocol.
    #[error(transparent)]
    Protocol(#[from] ConnError),
    /// The peer does not read: more than [`EngineConfig::max_outbound`]
    /// bytes were queued for it.
    #[error("peer does not read: {queued} bytes queued (limit {max})")]
    Outbound {
        /// Bytes queued beyond the newest message.
        queued: usize,
        /// The limit.
        max: usize,
    },
    /// What the channel holds of received bytes passed
    /// [`EngineConfig::max_buffered`] with this connection's bytes.
    #[error("receive budget exceeded: {buffered} bytes held (limit {max})")]
    Budget {
        /// Bytes held for all connections.
        buffered: usize,
        /// The limit.
        max: usize,
    },
    /// At [`EngineConfig::max_connections`], this connection had made no
    /// request and gave its place to a new one.
    #[error("connection limit reached: idle connection closed")]
    Evicted,
    /// Authentication failed or was refused (the text says which side and
    /// why); the calls waiting on the connection fail with it.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The driver closed it for a reason of its own (the text).
    #[error("{0}")]
    Other(String),
}

/// Why an incoming connection was closed before its handshake completed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The first line was bad (tcllib reports this unless `-silent`).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// No first line within [`EngineConfig::handshake_timeout`].
    #[error("no handshake within {0:?}")]
    TimedOut(Duration),
    /// At [`EngineConfig::max_connections`], with no idle connection to
    /// give way.
    #[error("connection limit of {0} reached")]
    Full(usize),
    /// At [`EngineConfig::max_connections`], this connection (still in its
    /// handshake) gave its place to a newer one.
    #[error("connection limit reached: connection closed in its handshake")]
    Evicted,
    /// The receive budget ([`EngineConfig::max_buffered`]) was exceeded.
    #[error("receive budget exceeded")]
    Budget,
    /// [`EngineConfig::loopback_only`] and the peer's address is not a
    /// loopback one.
    #[error("refused {0}: this channel accepts only local peers (-local 1)")]
    NotLocal(String),
    /// The peer offered authentication and did not prove the secret.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Authentication is required and the peer did not offer it (a tcllib
    /// peer, or ours without the secret). Until the handshake deadline
    /// closed it, each of its requests was answered with an error saying
    /// so ([`AUTH_REQUIRED_MESSAGE`]).
    #[error("authentication required: the peer did not offer it")]
    AuthRequired,
}

impl Refusal {
    /// Whether tcllib would report this (a bad first line): the others are
    /// limits of ours, which drivers log rather than raise as background
    /// errors.
    pub fn is_protocol(&self) -> bool {
        matches!(self, Refusal::Handshake(_))
    }

    /// Whether it is an authentication failure or refusal (drivers run the
    /// `incoming`-side reporting for these: someone knocked without the
    /// secret).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Refusal::Auth(_) | Refusal::AuthRequired | Refusal::NotLocal(_)
        )
    }
}

/// Which of the three request instructions a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `send`: answered with `reply`.
    Send,
    /// `async`: not answered.
    Async,
    /// `command`: answered with `callback`.
    Command,
}

impl RequestKind {
    /// The wire name of the instruction.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Send => "send",
            RequestKind::Async => "async",
            RequestKind::Command => "command",
        }
    }
}

/// A request received from a peer, to be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The connection it came in on; the answer goes back on it.
    pub conn: ConnId,
    /// The sender's id (what `remoteid` gives while it is evaluated).
    pub id: Id,
    /// send, async or command.
    pub kind: RequestKind,
    /// The sender's serial, echoed in the answer.
    pub serial: Serial,
    /// The script fragments.
    pub script: Vec<String>,
}

/// How a call waits for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// A synchronous `send`, completed by `reply`.
    Sync,
    /// A `send -command`, completed by `callback`.
    Callback,
}

/// A call that failed because its connection went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCall {
    /// The call's serial.
    pub serial: u64,
    /// How it was waiting.
    pub kind: CallKind,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the connection's transport.
    Write {
        /// The connection.
        conn: ConnId,
        /// The bytes, a whole message or handshake line.
        bytes: Vec<u8>,
    },
    /// An incoming connection completed its handshake and now has an id.
    Established {
        /// The connection.
        conn: ConnId,
        /// The peer's id, derived as tcllib does.
        id: Id,
        /// The negotiated version.
        version: u8,
    },
    /// Evaluate this request, then call [`Engine::respond`].
    Evaluate(Request),
    /// A call was answered.
    Complete {
        /// The call's serial.
        serial: u64,
        /// The peer it was sent to.
        id: Id,
        /// How the caller waits.
        kind: CallKind,
        /// The answer.
        outcome: Outcome,
    },
    /// An established connection went away (always right after its
    /// [`Action::Close`]). Drivers carry it out in this order, as tcllib
    /// does: each failed call in serial order (a sync caller gets
    /// [`Failure::from_loss`](crate::answer::Failure::from_loss), a callback
    /// [`CallbackArgs::from_loss`](crate::answer::CallbackArgs::from_loss),
    /// code -1),
    /// then `return_async` futures of requests from that connection are
    /// cancelled, then the `lost` hook runs with `loss` as its `reason`.
    Lost {
        /// The connection.
        conn: ConnId,
        /// The peer's id.
        id: Id,
        /// Why; its text is tcllib's reason where tcllib has one.
        loss: Loss,
        /// The calls that were waiting on it, in serial order.
        failed: Vec<FailedCall>,
    },
    /// A connection was closed before its handshake completed (always
    /// right after its [`Action::Close`]). tcllib reports a bad first line
    /// unless the channel is `-silent` ([`Refusal::is_protocol`]).
    Refused {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: Refusal,
    },
    /// Close the transport. The engine has forgotten the connection; later
    /// events for it are ignored.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// A protocol error that ended a connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnError {
    /// The byte stream could not be framed.
    #[error("protocol error: {0}")]
    Frame(#[from] FrameError),
    /// The handshake line was bad.
    #[error("protocol error: {0}")]
    Handshake(#[from] HandshakeError),
}

/// Errors of [`Engine::send`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// No connection to that id exists (the driver connects first).
    #[error("no connection to {0}")]
    NotConnected(Id),
}

#[derive(Debug)]
enum State {
    /// Accepted, waiting for the first line.
    AwaitingOffer {
        reader: LineReader,
        addr: String,
        port: u16,
        local: String,
    },
    /// Handshake done (or outgoing): messages flow.
    Open,
}

#[derive(Debug)]
struct Conn {
    id: Option<Id>,
    state: State,
    framer: Framer,
    version: u8,
    /// Count of calls waiting on this connection (so loss is O(calls) only
    /// when there are any).
    waiting: usize,
    /// Accepted from our listener (counted against the connection cap).
    incoming: bool,
    /// Received bytes held for it, as last counted into the channel's total.
    held: usize,
    /// The size of the newest message written to it (always allowed to
    /// go out whole, on top of the outbound budget).
    last_write: usize,
    /// Where its authentication stands.
    auth: Auth,
    /// Requests sent before our side of the authentication is done (an
    /// outgoing connection): written once it is.
    deferred: Vec<Vec<u8>>,
}

/// Where a connection's authentication stands (see [`crate::auth`]).
#[derive(Debug)]
enum Auth {
    /// None was asked for, or it succeeded: messages flow.
    Done,
    /// Accepted: we challenged with `ns`; the peer's id and version wait
    /// until it proves the secret.
    Challenged { ns: String, id: Id, version: u8 },
    /// Accepted: authentication is required and the peer did not offer it.
    Refusing,
    /// Outgoing: we offered; waiting for the challenge (or a plain `vers`
    /// from a peer that does not authenticate).
    Offered,
    /// Outgoing: we answered the challenge `ns` with our nonce `nc`.
    Answered { ns: String, nc: String },
}

#[derive(Debug)]
struct Pending {
    conn: ConnId,
    id: Id,
    kind: CallKind,
}

/// A fast hasher for keys the engine makes itself (connection handles and
/// serials), never chosen by a peer, so collision attacks do not apply.
/// Maps keyed by peer-chosen text (ids) keep the default SipHash. Drivers
/// may use it for their own maps keyed by [`ConnId`] (see [`OwnKeyMap`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct OwnKeyHasher(u64);

impl std::hash::Hasher for OwnKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by handles the engine makes (never by peer-chosen text),
/// hashed with [`OwnKeyHasher`].
pub type OwnKeyMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<OwnKeyHasher>>;

/// One channel's protocol state. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    serial: u64,
    next_conn: u64,
    conns: OwnKeyMap<ConnId, Conn>,
    /// The connection that carries new sends to each id.
    peers: HashMap<Id, ConnId>,
    pending: OwnKeyMap<u64, Pending>,
    actions: VecDeque<Action>,
    /// Incoming connections held (the cap counts these).
    incoming: usize,
    /// Incoming connections that have made no request yet, oldest first:
    /// the first to give way at the connection cap.
    idle: BTreeSet<ConnId>,
    /// Handshake deadlines of incoming connections, earliest first. Entries
    /// of connections that finished (or lost) their handshake are dropped
    /// lazily.
    deadlines: BTreeSet<(Instant, ConnId)>,
    /// The peer of the latest message that produced no action (a `vers`
    /// answer, an unknown instruction, an answer nobody waits for): tcllib
    /// counts every message for `remoteid`. See [`Engine::take_heard`].
    heard: Option<Id>,
    /// Received bytes held for all connections.
    held: usize,
    /// Nonces for authentication.
    rng: ChaCha20Rng,
}

impl Engine {
    /// A channel engine with no connections.
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            serial: 0,
            next_conn: 1,
            conns: OwnKeyMap::default(),
            peers: HashMap::new(),
            pending: OwnKeyMap::default(),
            actions: VecDeque::new(),
            incoming: 0,
            idle: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            heard: None,
            held: 0,
            rng: match config.rng_seed {
                Some(seed) => ChaCha20Rng::from_seed(seed),
                None => ChaCha20Rng::from_os_rng(),
            },
            config,
        }
    }

    /// A fresh nonce (32 random bytes, as hex).
    fn nonce(&mut self) -> String {
        let mut b = [0u8; 32];
        self.rng.fill_bytes(&mut b);
        auth::hex(&b)
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Changes the channel's own id (after a re-listen). Existing
    /// connections are the driver's to abort first, as tcllib does.
    pub fn set_own_id(&mut self, id: Id) {
        self.config.own_id = id;
    }

    /// Changes the message size bound for connections opened from now on.
    pub fn set_max_message(&mut self, max: usize) {
        self.config.max_message = max;
    }

    /// Changes the settings (not the id: see [`Engine::set_own_id`]). The
    /// message and handshake-line bounds apply to connections opened from
    /// now on, the handshake timeout to connections accepted from now on;
    /// the other limits at once.
    pub fn set_limits(&mut self, config: &EngineConfig) {
        let own_id = self.config.own_id.clone();
        self.config = EngineConfig {
            own_id,
            ..config.clone()
        };
    }

    /// The last serial used (tcllib's `-serial`).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The next action for the driver, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether actions are waiting.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    fn new_conn(&mut self, id: Option<Id>, state: State, incoming: bool) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let framer = Framer::new(self.config.max_message);
        self.conns.insert(
            conn,
            Conn {
                id,
                state,
                framer,
                version: 2,
                waiting: 0,
                incoming,
                held: 0,
                last_write: 0,
                auth: Auth::Done,
                deferred: Vec::new(),
            },
        );
        if incoming {
            self.incoming += 1;
            self.idle.insert(conn);
        }
        conn
    }

    fn write(&mut self, conn: ConnId, bytes: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_write = bytes.len();
        }
        self.actions.push_back(Action::Write { conn, bytes });
    }

    /// A new outgoing connection to `id` is open (after the `connected`
    /// hook). Queues the handshake offer; the connection becomes the one
    /// that carries sends to `id` unless one already does.
    pub fn outgoing(&mut self, id: Id) -> ConnId {
        let conn = self.new_conn(Some(id.clone()), State::Open, false);
        self.peers.entry(id).or_insert(conn);
        let own = self.config.own_id.as_str();
        let bytes = if self.config.auth.is_some() {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.auth = Auth::Offered;
            }
            let offered = format!("{} {}", auth::OFFER, handshake::OFFERED_VERSIONS);
            let mut line = crate::list::format_list([offered.as_str(), own]);
            line.push('\n');
            line.into_bytes()
        } else {
            handshake::client_offer(own)
        };
        self.write(conn, bytes);
        conn
    }

    /// A peer connected to our listener (after the `incoming` hook), at
    /// time `now`. `addr`/`port` are the peer's address and port, `local`
    /// the address of our end: they decide the peer's id as in tcllib.
    ///
    /// At the connection cap, the oldest incoming connection that has made
    /// no request is closed first ([`Loss::Evicted`], or
    /// [`Refusal::Evicted`] in its handshake); if there is none, the new
    /// connection itself is closed at once ([`Refusal::Full`]): the driver
    /// sees its [`Action::Close`] among the actions.
    pub fn accepted(&mut self, addr: &str, port: u16, local: &str, now: Instant) -> ConnId {
        let state = State::AwaitingOffer {
            reader: LineReader::new(self.config.max_handshake_line),
            addr: addr.to_string(),
            port,
            local: local.to_string(),
        };
        if self.incoming >= self.config.max_connections
            && let Some(&victim) = self.idle.first()
        {
            if self.is_handshaking(victim) {
                self.refuse(victim, Refusal::Evicted);
            } else {
                self.lose(victim, Loss::Evicted);
            }
        }
        let full = self.incoming >= self.config.max_connections;
        let foreign = self.config.loopback_only && !is_loopback(addr);
        let conn = self.new_conn(None, state, true);
        if foreign {
            self.refuse(conn, Refusal::NotLocal(addr.to_string()));
        } else if full {
            self.refuse(conn, Refusal::Full(self.config.max_connections));
        } else {
            self.deadlines
                .insert((now + self.config.handshake_timeout, conn));
        }
        conn
    }

    /// The earliest time at which [`Engine::handle_timeout`] has something
    /// to do (a handshake deadline), if any. Drivers arm one timer for it
    /// and ask again after every call into the engine.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(&(at, conn)) = self.deadlines.first() {
            if self.is_handshaking(conn) {
                return Some(at);
            }
            self.deadlines.pop_first();
        }
        None
    }

    /// Time passed: closes the incoming connections whose handshake
    /// deadline is at or before `now` ([`Refusal::TimedOut`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, conn)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if self.is_handshaking(conn) {
                let refusing = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| matches!(c.auth, Auth::Refusing));
                let reason = if refusing {
                    Refusal::AuthRequired
                } else {
                    Refusal::TimedOut(self.config.handshake_timeout)
                };
                self.refuse(conn, reason);
            }
        }
    }

    /// The driver holds `queued` bytes written for `conn` that the peer has
    /// not taken yet. Past [`EngineConfig::max_outbound`] beyond the newest
    /// message, the peer is taken not to read and its connection is dropped
    /// ([`Loss::Outbound`]): the driver frees what it held at the
    /// [`Action::Close`]. Returns whether the connection is still open.
    pub fn outbound(&mut self, conn: ConnId, queued: usize) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let beyond = queued.saturating_sub(c.last_write);
        if beyond > self.config.max_outbound {
            let max = self.config.max_outbound;
            self.lose(
                conn,
                Loss::Outbound {
                    queued: beyond,
                    max,
                },
            );
            return false;
        }
        true
    }

    /// Received bytes held for all connections (see
    /// [`EngineConfig::max_buffered`]).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Recounts what `conn` holds into the channel's total; past the
    /// budget, the connection goes. Returns whether it is still open.
    fn account(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let now = match &c.state {
            State::AwaitingOffer { reader, .. } => reader.buffered(),
            State::Open => c.framer.buffered(),
        };
        self.held = self.held - c.held + now;
        c.held = now;
        if self.held <= self.config.max_buffered {
            return true;
        }
        let (buffered, max) = (self.held, self.config.max_buffered);
        if c.id.is_some() {
            self.lose(conn, Loss::Budget { buffered, max });
        } else {
            self.refuse(conn, Refusal::Budget);
        }
        false
    }

    /// Bytes arrived on a connection. Unknown connections are ignored.
    pub fn received(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let State::AwaitingOffer {
            reader,
            addr,
            port,
            local,
        } = &mut c.state
        else {
            c.framer.feed(bytes);
            self.drain_messages(conn);
            self.account(conn);
            return;
        };
        let first = match reader.feed(bytes) {
            Ok(Some(first)) => first,
            Ok(None) => {
                self.account(conn);
                return;
            }
            Err(error) => return self.refuse(conn, error.into()),
        };
        let offer = match handshake::parse_offer(&first.line, addr, *port) {
            Ok(offer) => offer,
            Err(error) => return self.refuse(conn, error.into()),
        };
        let id = Id::from_text(offer.peer_id(local, addr));
        c.state = State::Open;
        c.version = offer.version;
        c.framer.feed(&first.rest);
        let asked = crate::list::parse_list(&first.line)
            .ok()
            .and_then(|w| w.into_iter().next())
            .and_then(|v| crate::list::parse_list(&v).ok())
            .is_some_and(|v| v.iter().any(|v| v == auth::OFFER));
        match (&self.config.auth, asked) {
            (Some(_), true) => {
                // Challenge; the peer is known by its id only once it has
                // proven the secret.
                let ns = self.nonce();
                let challenge = Message::Unknown {
                    words: vec![auth::INSTRUCTION.into(), "challenge".into(), ns.clone()],
                };
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.auth = Auth::Challenged {
                        ns,
                        id,
                        version: offer.version,
                    };
                }
                self.write(conn, challenge.encode());
            }
            (Some(a), false) if a.required => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.auth = Auth::Refusing;
                }
            }
            _ => self.establish(conn, id, offer.version),
        }
        self.drain_messages(conn);
        self.account(conn);
    }

    /// An accepted connection is ready for messages: answer the version,
    /// let sends to `id` use it, report it.
    fn establish(&mut self, conn: ConnId, id: Id, version: u8) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.id = Some(id.clone());
            c.auth = Auth::Done;
        }
        if version == 3 {
            self.write(conn, handshake::VERS3_ANSWER.to_vec());
        }
        self.peers.entry(id.clone()).or_insert(conn);
        self.actions
            .push_back(Action::Established { conn, id, version });
    }

    /// Writes what was sent on an outgoing connection while its
    /// authentication was under way.
    fn release_deferred(&mut self, conn: ConnId) {
        let deferred = match self.conns.get_mut(&conn) {
            Some(c) => {
                c.auth = Auth::Done;
                std::mem::take(&mut c.deferred)
            }
            None => return,
        };
        for bytes in deferred {
            self.write(conn, bytes);
        }
    }

    /// A message on a connection whose authentication is not done.
    fn dispatch_auth(&mut self, conn: ConnId, word: &str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let state = std::mem::replace(&mut c.auth, Auth::Done);
        let message = Message::decode(word).ok();
        let words: Vec<&str> = match &message {
            Some(Message::Unknown { words })
                if words.first().map(String::as_str) == Some(auth::INSTRUCTION) =>
            {
                words.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        };
        let Some(secret) = self.config.auth.as_ref().map(|a| a.secret.clone()) else {
            // Authentication was turned off meanwhile: nothing to prove.
            return self.lose(conn, Loss::Auth("no longer configured".into()));
        };
        match (state, words.as_slice()) {
            (Auth::Challenged { ns, id, version }, [_, "response", nc, proof]) => {
                if auth::verify(&secret, b"client", &ns, nc, proof) {
                    let answer = Message::Unknown {
                        words: vec![
                            auth::INSTRUCTION.into(),
                            "ok".into(),
                            auth::server_proof(&secret, &ns, nc),
                        ],
                    };
                    self.write(conn, answer.encode());
                    self.establish(conn, id, version);
                } else {
                    self.refuse_auth(conn, Refusal::Auth("wrong secret".into()));
                }
            }
            (Auth::Challenged { .. }, _) => {
                self.refuse_auth(conn, Refusal::Auth("no answer to the challenge".into()))
            }
            (Auth::Refusing, _) => {
                // Each request of a peer that does not authenticate gets an
                // error that says why; the connection stays until the
                // handshake deadline closes it, since tcllib drops what it
                // reads together with EOF and would never see the answer.
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.auth = Auth::Refusing;
                }
                let request = match &message {
                    Some(Message::Send { serial, .. }) => Some((RequestKind::Send, serial)),
                    Some(Message::Command { serial, .. }) => Some((RequestKind::Command, serial)),
                    _ => None,
                };
                if let Some((kind, serial)) = request {
                    let outcome = Outcome {
                        code: Code::Error,
                        result: AUTH_REQUIRED_MESSAGE.to_string(),
                        errorinfo: AUTH_REQUIRED_MESSAGE.to_string(),
                        errorcode: "TCLCOMM AUTH REQUIRED".to_string(),
                    };
                    self.respond(conn, kind, serial, &outcome);
                }
            }
            (Auth::Offered, [_, "challenge", ns]) => {
                let nc = self.nonce();
                let response = Message::Unknown {
                    words: vec![
                        auth::INSTRUCTION.into(),
                        "response".into(),
                        nc.clone(),
                        auth::client_proof(&secret, ns, &nc),
                    ],
                };
                let ns = (*ns).to_string();
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.auth = Auth::Answered { ns, nc };
                }
                self.write(conn, response.encode());
            }
            (Auth::Offered, _) if matches!(message, Some(Message::Vers { .. })) => {
                let required = self.config.auth.as_ref().is_some_and(|a| a.required);
                if required {
                    self.lose(
                        conn,
                        Loss::Auth(
                            "the peer does not authenticate (not tclcomm, or no secret set there)"
                                .into(),
                        ),
                    );
                } else {
                    // A peer that does not authenticate: plain comm.
                    self.release_deferred(conn);
                    self.dispatch(conn, word);
                }
            }
            (Auth::Answered { ns, nc }, [_, "ok", proof]) => {
                if auth::verify(&secret, b"server", &ns, &nc, proof) {
                    self.release_deferred(conn);
                } else {
                    self.lose(
                        conn,
                        Loss::Auth("the peer could not prove the secret".into()),
                    );
                }
            }
            (Auth::Offered | Auth::Answered { .. }, [_, "refused", reason]) => {
                self.lose(conn, Loss::Auth(format!("refused by the peer: {reason}")));
            }
            (Auth::Offered | Auth::Answered { .. }, _) => {
                self.lose(
                    conn,
                    Loss::Auth("unexpected message during authentication".into()),
                );
            }
            (Auth::Done, _) => self.dispatch(conn, word),
        }
    }

    /// Tells an accepted peer why it is refused, then closes.
    fn refuse_auth(&mut self, conn: ConnId, reason: Refusal) {
        let text = match &reason {
            Refusal::Auth(why) => why.clone(),
            other => other.to_string(),
        };
        let refused = Message::Unknown {
            words: vec![auth::INSTRUCTION.into(), "refused".into(), text],
        };
        self.write(conn, refused.encode());
        self.refuse(conn, reason);
    }

    /// Removes a connection and everything counted for it.
    fn forget(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        self.held -= c.held;
        if c.incoming {
            self.incoming -= 1;
            self.idle.remove(&conn);
        }
        Some(c)
    }

    fn refuse(&mut self, conn: ConnId, reason: Refusal) {
        if self.forget(conn).is_none() {
            return;
        }
        self.actions.push_back(Action::Close { conn });
        self.actions.push_back(Action::Refused { conn, reason });
    }

    fn drain_messages(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.framer.next_word() {
                Ok(Some(word)) if word.len() >= BIG_MESSAGE => {
                    if let Err(word) = self.dispatch_big(conn, word) {
                        self.dispatch(conn, &word);
                    }
                }
                Ok(Some(word)) => {
                    self.dispatch(conn, &word);
                    // The framer reuses the buffer for a later message.
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.framer.recycle(word);
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    self.lose(conn, Loss::Protocol(ConnError::Frame(e)));
                    return;
                }
            }
        }
    }

    fn dispatch(&mut self, conn: ConnId, word: &str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !matches!(c.auth, Auth::Done) {
            return self.dispatch_auth(conn, word);
        }
        let Some(id) = c.id.clone() else { return };
        // A word that is not a list is ignored, as tcllib ignores what it
        // cannot use; the framer already guaranteed it is a complete script.
        let Ok(head) = crate::message::Head::read(word) else {
            return;
        };
        // An answer is matched by its serial's text, which need not be
        // kept: it is read here, without building a message.
        let answer = match head.instruction() {
            "reply" => Some(CallKind::Sync),
            "callback" => Some(CallKind::Callback),
            _ => None,
        };
        if let Some(kind) = answer {
            let Ok(outcome) = Outcome::decode(head.payload()) else {
                return;
            };
            return self.complete(conn, head.serial(), kind, outcome);
        }
        let Ok(message) = head.into_message() else {
            return;
        };
        let (kind, serial, script) = match message {
            Message::Send { serial, script } => (RequestKind::Send, serial, script),
            Message::Async { serial, script } => (RequestKind::Async, serial, script),
            Message::Command { serial, script } => (RequestKind::Command, serial, script),
            // Matched above, from the head.
            Message::Reply { .. } | Message::Callback { .. } => return,
            Message::Vers { version } => {
                if let Ok(v) = version.trim().parse::<u8>() {
                    c.version = v;
                }
                self.heard = Some(id);
                return;
            }
            Message::Unknown { .. } => {
                self.heard = Some(id);
                return;
            }
        };
        self.request(conn, id, kind, serial, script);
    }

    /// A request's last step: it counts as the connection's first, is
    /// checked for nesting, and goes to the driver to evaluate.
    fn request(
        &mut self,
        conn: ConnId,
        id: Id,
        kind: RequestKind,
        serial: Serial,
        script: Vec<String>,
    ) {
        if self.conns.get(&conn).is_some_and(|c| c.incoming) {
            self.idle.remove(&conn);
        }
        if nesting_exceeds(&script, self.config.max_nesting) {
            // Answered here, never evaluated: Tcl's parser would overflow
            // the C stack on it (tcllib crashes).
            let outcome = Outcome {
                code: Code::Error,
                result: NESTING_MESSAGE.to_string(),
                errorinfo: NESTING_MESSAGE.to_string(),
                errorcode: NESTING_ERRORCODE.to_string(),
            };
            self.respond(conn, kind, &serial, &outcome);
            return;
        }
        self.actions.push_back(Action::Evaluate(Request {
            conn,
            id,
            kind,
            serial,
            script,
        }));
    }

    /// A big message whose script is one braced fragment (every comm
    /// sender's `send id $script`): the fragment is cut out of the word in
    /// place instead of copied, so the message is held once, not twice,
    /// while it is decoded. Any other word is handed back for
    /// [`dispatch`](Engine::dispatch).
    fn dispatch_big(&mut self, conn: ConnId, word: String) -> Result<(), String> {
        let Some(c) = self.conns.get(&conn) else {
            return Ok(());
        };
        let Some(id) = c.id.clone().filter(|_| matches!(c.auth, Auth::Done)) else {
            return Err(word);
        };
        // The usual shape, `send 5 {{script}}`, in one scan of the script
        // (the general path below scans it twice: for the message's third
        // element, then for the payload's one).
        if let Some(found) = crate::list::one_braced_fragment(&word) {
            let (instruction, serial, start, end) = found;
            let kind = match instruction {
                "send" => RequestKind::Send,
                "async" => RequestKind::Async,
                "command" => RequestKind::Command,
                _ => return Err(word),
            };
            let serial = Serial(serial.to_string());
            let mut fragment = word;
            fragment.truncate(end);
            fragment.drain(..start);
            self.request(conn, id, kind, serial, vec![fragment]);
            return Ok(());
        }
        let found = {
            let Ok(words) = crate::list::parse_list_cow(&word) else {
                return Err(word);
            };
            let kind = match words.first().map(|w| w.as_ref()) {
                Some("send") => RequestKind::Send,
                Some("async") => RequestKind::Async,
                Some("command") => RequestKind::Command,
                _ => return Err(word),
            };
            let (Some(serial), Some(Cow::Borrowed(payload)), 3) =
                (words.get(1), words.get(2), words.len())
            else {
                return Err(word);
            };
            let Ok(fragments) = crate::list::parse_list_cow(payload) else {
                return Err(word);
            };
            let [Cow::Borrowed(fragment)] = fragments.as_slice() else {
                return Err(word);
            };
            // Where the fragment lies in the word (it borrows from it).
            let start = fragment.as_ptr() as usize - word.as_ptr() as usize;
            (kind, Serial(serial.to_string()), start, fragment.len())
        };
        let (kind, serial, start, len) = found;
        let mut fragment = word;
        fragment.truncate(start + len);
        fragment.drain(..start);
        self.request(conn, id, kind, serial, vec![fragment]);
        Ok(())
    }

    fn complete(&mut self, conn: ConnId, serial: &str, kind: CallKind, outcome: Outcome) {
        let n = serial.trim().parse::<u64>().ok();
        // Only the connection the call went out on may answer it, and only
        // with the matching instruction.
        let Some(n) = n.filter(|n| {
            self.pending
                .get(n)
                .is_some_and(|p| p.conn == conn && p.kind == kind)
        }) else {
            self.heard = self.conns.get(&conn).and_then(|c| c.id.clone());
            return;
        };
        let Some(p) = self.pending.remove(&n) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.waiting = c.waiting.saturating_sub(1);
        }
        self.actions.push_back(Action::Complete {
            serial: n,
            id: p.id,
            kind,
            outcome,
        });
    }

    /// The peer of the latest received message that produced no action (a
    /// `vers` answer, an unknown instruction, an answer nobody waits for),
    /// once: tcllib's `remoteid` names the sender of the latest message of
    /// any kind, so drivers that keep it update it from here too.
    pub fn take_heard(&mut self) -> Option<Id> {
        self.heard.take()
    }

    /// Uses up a serial without sending anything, and returns it: tcllib
    /// takes the serial before writing, so a send whose connection turns
    /// out not to be a channel (a `connecting` hook that returned a bogus
    /// "socket") still consumes one.
    pub fn skip_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// Sends a request to `id` over its connection. Returns the serial.
    /// `Sync` and `Callback` requests are remembered until answered, lost
    /// or [cancelled](Engine::cancel); `Async` ones are not.
    pub fn send(
        &mut self,
        id: &Id,
        kind: RequestKind,
        script: Vec<String>,
    ) -> Result<u64, SendError> {
        let conn = self
            .connection(id)
            .ok_or_else(|| SendError::NotConnected(id.clone()))?;
        self.serial += 1;
        let serial = self.serial;
        let instruction = match kind {
            RequestKind::Send => "send",
            RequestKind::Async => "async",
            RequestKind::Command => "command",
        };
        let call = match kind {
            RequestKind::Send => Some(CallKind::Sync),
            RequestKind::Command => Some(CallKind::Callback),
            RequestKind::Async => None,
        };
        if let Some(call) = call {
            self.pending.insert(
                serial,
                Pending {
                    conn,
                    id: id.clone(),
                    kind: call,
                },
            );
            if let Some(c) = self.conns.get_mut(&conn) {
                c.waiting += 1;
            }
        }
        let digits = crate::message::Digits::new(serial);
        let bytes = crate::message::encode_request_text(instruction, digits.as_str(), script);
        match self.conns.get_mut(&conn) {
            Some(c) if matches!(c.auth, Auth::Offered | Auth::Answered { .. }) => {
                c.deferred.push(bytes);
            }
            _ => self.write(conn, bytes),
        }
        Ok(serial)
    }

    /// Forgets a pending call (its caller gave up): a late answer is ignored.
    /// Returns whether it was pending.
    pub fn cancel(&mut self, serial: u64) -> bool {
        match self.pending.remove(&serial) {
            Some(p) => {
                if let Some(c) = self.conns.get_mut(&p.conn) {
                    c.waiting = c.waiting.saturating_sub(1);
                }
                true
            }
            None => false,
        }
    }

    /// Answers a request received on `conn`. Nothing is sent for `async`
    /// requests. Returns false if the connection is gone (the answer is
    /// dropped, as there is no one to give it to).
    pub fn respond(
        &mut self,
        conn: ConnId,
        kind: RequestKind,
        serial: &Serial,
        outcome: &Outcome,
    ) -> bool {
        if !matches!(
            self.conns.get(&conn),
            Some(Conn {
                state: State::Open,
                ..
            })
        ) {
            return false;
        }
        // Encoded from the borrowed outcome: a big result is not copied
        // into a message first.
        let instruction = match kind {
            RequestKind::Send => "reply",
            RequestKind::Command => "callback",
            RequestKind::Async => return true,
        };
        self.write(conn, Message::encode_answer(instruction, serial, outcome));
        true
    }

    /// The transport of `conn` reached EOF or failed. Every complete message
    /// received before has already been acted on; the connection is lost.
    pub fn closed(&mut self, conn: ConnId) {
        self.lose(conn, Loss::Closed);
    }

    /// Closes the connection that carries sends to `id` as tcllib's
    /// `shutdown` does. Returns the reason if there was one.
    pub fn shutdown(&mut self, id: &Id) -> Option<&'static str> {
        let conn = *self.peers.get(id)?;
        self.lose(conn, Loss::Shutdown);
        Some(REASON_SHUTDOWN)
    }

    /// Closes a single connection for a reason of the driver's.
    pub fn close_conn(&mut self, conn: ConnId, loss: Loss) {
        self.lose(conn, loss);
    }

    /// Closes every connection, including ones still in their handshake and
    /// duplicates, as tcllib's `abort` means to.
    pub fn abort(&mut self) {
        let mut all: Vec<ConnId> = self.conns.keys().copied().collect();
        all.sort();
        for conn in all {
            self.lose(conn, Loss::Abort);
        }
    }

    fn lose(&mut self, conn: ConnId, loss: Loss) {
        let Some(c) = self.forget(conn) else {
            return;
        };
        let Some(id) = c.id else {
            // Still in its handshake: nothing was waiting on it.
            let reason = match loss {
                Loss::Budget { .. } => Refusal::Budget,
                Loss::Evicted => Refusal::Evicted,
                _ => {
                    self.actions.push_back(Action::Close { conn });
                    return;
                }
            };
            self.actions.push_back(Action::Close { conn });
            self.actions.push_back(Action::Refused { conn, reason });
            return;
        };
        let mut failed = Vec::new();
        if c.waiting > 0 {
            let mut serials: Vec<u64> = self
                .pending
                .iter()
                .filter(|(_, p)| p.conn == conn)
                .map(|(s, _)| *s)
                .collect();
            serials.sort_unstable();
            for serial in serials {
                if let Some(p) = self.pending.remove(&serial) {
                    failed.push(FailedCall {
                        serial,
                        kind: p.kind,
                    });
                }
            }
        }
        if self.peers.get(&id) == Some(&conn) {
            self.peers.remove(&id);
            // Another connection with the same id takes over, if any
            // (the oldest, so the choice is deterministic).
            let next = self
                .conns
                .iter()
                .filter(|(_, o)| o.id.as_ref() == Some(&id) && matches!(o.state, State::Open))
                .map(|(k, _)| *k)
                .min();
            if let Some(next) = next {
                self.peers.insert(id.clone(), next);
            }
        }
        self.actions.push_back(Action::Close { conn });
        self.actions.push_back(Action::Lost {
            conn,
            id,
            loss,
            failed,
        });
    }

    /// The connection that carries sends to `id`, if any.
    pub fn connection(&self, id: &Id) -> Option<ConnId> {
        self.peers.get(id).copied()
    }

    /// The peer id of a connection (None while its handshake is pending).
    pub fn conn_id(&self, conn: ConnId) -> Option<&Id> {
        self.conns.get(&conn).and_then(|c| c.id.as_ref())
    }

    /// The negotiated version of a connection (2 until a `vers` arrives on
    /// an outgoing connection).
    pub fn version(&self, conn: ConnId) -> Option<u8> {
        self.conns.get(&conn).map(|c| c.version)
    }

    /// Whether a connection is known (open or in its handshake).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Whether a connection is still waiting for its first line.
    pub fn is_handshaking(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn),
            Some(
                Conn {
                    state: State::AwaitingOffer { .. },
                    ..
                } | Conn {
                    auth: Auth::Challenged { .. } | Auth::Refusing,
                    ..
                }
            )
        )
    }

    /// The ids of all established connections, one per connection (as
    /// tcllib's `interps` lists one per socket), oldest first.
    pub fn ids(&self) -> Vec<Id> {
        let mut v: Vec<(ConnId, Id)> = self
            .conns
            .iter()
            .filter_map(|(k, c)| c.id.clone().map(|id| (*k, id)))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    /// Every connection handle, oldest first.
    pub fn conns(&self) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self.conns.keys().copied().collect();
        v.sort();
        v
    }

    /// Bytes buffered for a connection (for limits and diagnostics).
    pub fn buffered(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| match &c.state {
            State::AwaitingOffer { reader, .. } => reader.buffered(),
            State::Open => c.framer.buffered(),
        })
    }

    /// The number of calls waiting for an answer.
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }
}

/// Whether an address (as drivers and Tcl print it) is a loopback one:
/// 127.0.0.0/8, ::1, or IPv4-mapped loopback. Text that is not an address
/// is not.
pub fn is_loopback(addr: &str) -> bool {
    let addr = addr.split('%').next().unwrap_or(addr);
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => a.is_loopback(),
        Ok(std::net::IpAddr::V6(a)) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// Whether the `[` nesting of a script (its fragments read as one text, as
/// `concat` joins them) goes deeper than `max`. Backslashed characters do
/// not count; braces are not looked at, since a braced body is parsed when
/// it is evaluated, and then its brackets nest the same way. The count may
/// be higher than what Tcl would nest (a `[` inside braces that are never
/// evaluated), never lower.
pub fn nesting_exceeds<S: AsRef<str>>(script: &[S], max: usize) -> bool {
    use crate::list::{BLOCK, Block, EscapeTracker};
    let total: usize = script.iter().map(|f| f.as_ref().len()).sum();
    if total <= max {
        return false;
    }
    let mut depth = 0usize;
    for fragment in script {
        let bytes = fragment.as_ref().as_bytes();
        // A block (64 bytes) at a time, with the escapes resolved by masks:
        // a search call per backslash cost more than the rest of a request
        // when escapes are dense (one byte in two).
        let mut escapes = EscapeTracker::default();
        for chunk in bytes.chunks(BLOCK) {
            let block = match chunk.first_chunk::<BLOCK>() {
                Some(whole) => Block::new(whole),
                None => Block::padded(chunk),
            };
            // A backslash and the character it escapes do not count.
            let escaped = escapes.next(block.eq(b'\\'));
            let open = block.eq(b'[') & !escaped;
            let mut brackets = (open | block.eq(b']')) & !escaped;
            while brackets != 0 {
                let bit = brackets & brackets.wrapping_neg();
                brackets &= brackets - 1;
                if open & bit != 0 {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                } else {
                    depth = depth.saturating_sub(1);
                }
            }
        }
    }
    false
}

/// [`nesting_exceeds`] a byte at a time (the reference for its test).
#[cfg(test)]
fn nesting_exceeds_bytewise<S: AsRef<str>>(script: &[S], max: usize) -> bool {
    let mut depth = 0usize;
    for fragment in script {
        let bytes = fragment.as_ref().as_bytes();
        let mut k = 0;
        while k < bytes.len() {
            match bytes[k] {
                b'[' => {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                    k += 1;
                }
                b']' => {
                    depth = depth.saturating_sub(1);
                    k += 1;
                }
                b'\\' => k += 2,
                _ => k += 1,
            }
        }
    }
    false
}

#[cfg(test)]
mod nesting_tests {
    use super::*;
    use crate::test_rng::{Cases, Draws};

    #[test]
    fn block_nesting_matches_bytewise() {
        let alphabet = b"[]\\ab";
        let mut cases = Cases::new(0x0000_6e57_1e55_0001);
        for _ in 0..20_000 {
            let seed = cases.next_seed();
            let mut draws = Draws::new(seed);
            let fragments: Vec<String> = (0..1 + draws.below(3))
                .map(|_| {
                    let len = draws.below(200);
                    (0..len).map(|_| char::from(draws.pick(alphabet))).collect()
                })
                .collect();
            let max = draws.below(8);
            // The reference without the short cut for short scripts.
            let total: usize = fragments.iter().map(String::len).sum();
            assert_eq!(
                nesting_exceeds(&fragments, max),
                total > max && nesting_exceeds_bytewise(&fragments, max),
                "{fragments:?} {max}"
            );
        }
    }
}
