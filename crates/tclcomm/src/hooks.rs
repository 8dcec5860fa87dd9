//! Hooks: Rust closures for comm's seven events, with the data tcllib's
//! hook scripts see and the same power to refuse, rewrite or answer.

use std::sync::Arc;

use tclcomm_wire::engine::RequestKind;
use tclcomm_wire::{Id, Outcome, Serial};

/// A send or `connect` is about to look up or open a connection (tcllib's
/// `connecting`: runs at the start of every send, even when connected).
#[derive(Debug, Clone)]
pub struct ConnectingEvent {
    /// The channel's name.
    pub chan: String,
    /// The peer.
    pub id: Id,
}

/// A new outgoing connection is open, before the handshake is sent.
#[derive(Debug, Clone)]
pub struct ConnectedEvent {
    /// The channel's name.
    pub chan: String,
    /// The peer.
    pub id: Id,
    /// The host dialled.
    pub host: String,
    /// The port dialled.
    pub port: u16,
}

/// A peer connected to the listener, before its handshake is read.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    /// The channel's name.
    pub chan: String,
    /// The peer's address.
    pub addr: String,
    /// The peer's port.
    pub remport: u16,
}

/// A request is about to be evaluated. The hook may rewrite `script`.
#[derive(Debug, Clone)]
pub struct EvalEvent {
    /// The channel's name.
    pub chan: String,
    /// The sender's id (`remoteid`).
    pub id: Id,
    /// send, async or command (tcllib's `cmd`).
    pub kind: RequestKind,
    /// The sender's serial (tcllib's `ser`).
    pub serial: Serial,
    /// The script fragments (tcllib's `buffer`); changes take effect.
    pub script: Vec<String>,
}

/// What an eval hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalDecision {
    /// Evaluate the (possibly rewritten) script.
    Continue,
    /// Do not evaluate; answer with this result (tcllib: `return X`).
    Answer(String),
    /// Do not evaluate; answer with this outcome (tcllib: the hook raised an
    /// error, which becomes the result).
    Fail(Outcome),
}

/// An answer arrived for a call (tcllib's `reply` and `callback` hooks).
/// Changing `outcome` changes what the caller gets.
#[derive(Debug, Clone)]
pub struct ReplyEvent {
    /// The channel's name.
    pub chan: String,
    /// The peer that answered.
    pub id: Id,
    /// The call's serial.
    pub serial: u64,
    /// The answer.
    pub outcome: Outcome,
}

/// A connection went away.
#[derive(Debug, Clone)]
pub struct LostEvent {
    /// The channel's name.
    pub chan: String,
    /// The peer.
    pub id: Id,
    /// tcllib's reason text.
    pub reason: String,
}

/// A refusal from a `connecting`, `connected` or `incoming` hook: the text
/// becomes the error (`Connect to remote failed: <text>`).
pub type Refusal = String;

type Check<E> = Arc<dyn Fn(&E) -> Result<(), Refusal> + Send + Sync>;
type EvalHook = Arc<dyn Fn(&mut EvalEvent) -> EvalDecision + Send + Sync>;
type ReplyHook = Arc<dyn Fn(&mut ReplyEvent) + Send + Sync>;
type LostHook = Arc<dyn Fn(&LostEvent) + Send + Sync>;

/// The hooks of a channel. Each is optional; setting one replaces it.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) connecting: Option<Check<ConnectingEvent>>,
    pub(crate) connected: Option<Check<ConnectedEvent>>,
    pub(crate) incoming: Option<Check<IncomingEvent>>,
    pub(crate) eval: Option<EvalHook>,
    pub(crate) reply: Option<ReplyHook>,
    pub(crate) callback: Option<ReplyHook>,
    pub(crate) lost: Option<LostHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("connecting", &self.connecting.is_some())
            .field("connected", &self.connected.is_some())
            .field("incoming", &self.incoming.is_some())
            .field("eval", &self.eval.is_some())
            .field("reply", &self.reply.is_some())
            .field("callback", &self.callback.is_some())
            .field("lost", &self.lost.is_some())
            .finish()
    }
}

/// The seven hook events, to clear one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// `connecting`
    Connecting,
    /// `connected`
    Connected,
    /// `incoming`
    Incoming,
    /// `eval`
    Eval,
    /// `reply`
    Reply,
    /// `callback`
    Callback,
    /// `lost`
    Lost,
}

impl Hooks {
    pub(crate) fn clear(&mut self, kind: HookKind) {
        match kind {
            HookKind::Connecting => self.connecting = None,
            HookKind::Connected => self.connected = None,
            HookKind::Incoming => self.incoming = None,
            HookKind::Eval => self.eval = None,
            HookKind::Reply => self.reply = None,
            HookKind::Callback => self.callback = None,
            HookKind::Lost => self.lost = None,
        }
    }
}
