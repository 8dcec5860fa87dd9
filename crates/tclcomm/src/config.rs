//! Channel configuration: what tcllib's `configure` options say, plus limits.

use tclcomm_wire::auth::{AuthConfig, Secret};

use crate::evaluator::Evaluator;
use crate::transport::Transport;
use std::sync::Arc;
use std::time::Duration;

/// Which port a listening channel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Port {
    /// Whatever the OS assigns (tcllib's `-port 0`).
    #[default]
    Any,
    /// Exactly this port; taken means `couldn't open socket: address already in use`.
    Fixed(u16),
    /// The first free port above 10000 starting at a per-process offset,
    /// as the man page's "high port" (`-port {}`).
    High,
}

impl From<u16> for Port {
    fn from(p: u16) -> Port {
        if p == 0 { Port::Any } else { Port::Fixed(p) }
    }
}

/// Bounds that keep a hostile or broken peer from exhausting a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest message accepted from a peer (default 256 MiB).
    pub max_message: usize,
    /// The longest handshake line accepted (default 4096 bytes).
    pub max_handshake_line: usize,
    /// How long a connecting peer may take to send its handshake line
    /// (default 30 s); then it is dropped.
    pub handshake_timeout: Duration,
    /// Most incoming connections held at once (default 1024). At the cap a
    /// new one takes the place of the oldest that has made no request yet;
    /// if all have, the new one is closed.
    pub max_connections: usize,
    /// Most bytes queued for a peer that does not read, beyond the newest
    /// message (default 64 MiB); past that its connection is dropped rather
    /// than grow without bound.
    pub max_outbound: usize,
    /// Most received bytes held for all connections together (default
    /// 512 MiB): many big messages at once are refused, not absorbed.
    pub max_buffered: usize,
    /// Deepest nesting of `[` in a received script (default 1000); deeper
    /// ones are answered with Tcl's `too many nested compilations` error.
    pub max_nesting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        use tclcomm_wire::engine as e;
        Limits {
            max_message: tclcomm_wire::DEFAULT_MAX_MESSAGE,
            max_handshake_line: e::DEFAULT_MAX_HANDSHAKE_LINE,
            handshake_timeout: e::DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: e::DEFAULT_MAX_CONNECTIONS,
            max_outbound: e::DEFAULT_MAX_OUTBOUND,
            max_buffered: e::DEFAULT_MAX_BUFFERED,
            max_nesting: e::DEFAULT_MAX_NESTING,
        }
    }
}

impl Config {
    /// The engine's settings for this configuration (the engine enforces
    /// the limits and runs the authentication).
    pub(crate) fn engine_config(
        &self,
        own_id: tclcomm_wire::Id,
    ) -> tclcomm_wire::engine::EngineConfig {
        let l = &self.limits;
        tclcomm_wire::engine::EngineConfig {
            own_id,
            max_message: l.max_message,
            max_handshake_line: l.max_handshake_line,
            handshake_timeout: l.handshake_timeout,
            max_connections: l.max_connections,
            max_outbound: l.max_outbound,
            max_buffered: l.max_buffered,
            max_nesting: l.max_nesting,
            auth: self.auth.clone(),
            rng_seed: None,
            loopback_only: self.local,
        }
    }
}

/// How a channel is set up. A by-value builder:
///
/// ```
/// use tclcomm::{Config, Port};
/// let config = Config::new().listen(true).port(Port::Any).local(true);
/// assert!(config.listen);
/// ```
#[derive(Clone)]
pub struct Config {
    /// The channel's name, shown to hooks as `chan` (default `::comm::comm`
    /// style names are the Tcl package's business; the runtime defaults to
    /// `channelN`).
    pub name: Option<String>,
    /// The port to listen on.
    pub port: Port,
    /// Whether to listen. A channel that does not listen has id 0.
    pub listen: bool,
    /// Listen on loopback only (127.0.0.1 and ::1) rather than every interface.
    pub local: bool,
    /// Do not report refused handshakes.
    pub silent: bool,
    /// TCP or TLS.
    pub transport: Transport,
    /// Resource bounds.
    pub limits: Limits,
    /// Mutual authentication with a shared secret (opt-in; tcllib peers
    /// still connect unless it is `required`). See [`AuthConfig`].
    pub auth: Option<AuthConfig>,
    /// What evaluates received scripts (default: an empty
    /// [`Dispatcher`](crate::Dispatcher), so every command is unknown).
    pub evaluator: Option<Arc<dyn Evaluator>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("listen", &self.listen)
            .field("local", &self.local)
            .field("silent", &self.silent)
            .field("transport", &self.transport)
            .field("limits", &self.limits)
            .field("auth", &self.auth)
            .field("evaluator", &self.evaluator.is_some())
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: None,
            port: Port::Any,
            listen: false,
            local: true,
            silent: false,
            transport: Transport::Tcp,
            limits: Limits::default(),
            auth: None,
            evaluator: None,
        }
    }
}

impl Config {
    /// tcllib's defaults for a new channel: port 0, not listening, local.
    pub fn new() -> Config {
        Config::default()
    }

    /// A listening channel on an OS-assigned loopback port (tcllib's default
    /// channel `::comm::comm`).
    pub fn listening() -> Config {
        Config::default().listen(true)
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Config {
        self.name = Some(name.into());
        self
    }

    /// Sets the port.
    pub fn port(mut self, port: impl Into<Port>) -> Config {
        self.port = port.into();
        self
    }

    /// Sets whether to listen.
    pub fn listen(mut self, listen: bool) -> Config {
        self.listen = listen;
        self
    }

    /// Sets loopback-only listening.
    pub fn local(mut self, local: bool) -> Config {
        self.local = local;
        self
    }

    /// Sets silence about refused handshakes.
    pub fn silent(mut self, silent: bool) -> Config {
        self.silent = silent;
        self
    }

    /// Sets the transport.
    pub fn transport(mut self, transport: Transport) -> Config {
        self.transport = transport;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Config {
        self.limits = limits;
        self
    }

    /// Sets mutual authentication with `secret` (from
    /// [`read_or_create_cookie`](tclcomm_wire::auth::read_or_create_cookie)
    /// or given directly); with `required`, peers that do not prove it are
    /// refused, else only peers that offer authentication must pass it.
    pub fn auth(mut self, secret: Secret, required: bool) -> Config {
        self.auth = Some(AuthConfig { secret, required });
        self
    }

    /// Sets the evaluator of received scripts.
    pub fn evaluator(mut self, evaluator: impl Evaluator) -> Config {
        self.evaluator = Some(Arc::new(evaluator));
        self
    }

    /// Sets the evaluator from a shared handle.
    pub fn evaluator_arc(mut self, evaluator: Arc<dyn Evaluator>) -> Config {
        self.evaluator = Some(evaluator);
        self
    }
}
