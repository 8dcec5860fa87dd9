//! # tclcomm: Tcl's `comm` protocol for Rust programs
//!
//! Talk to running Tcl applications that use tcllib `comm` 4.7, or serve
//! them, with no libtcl: a [`Channel`] on tokio, wire-compatible with tcllib
//! comm in both directions.
//!
//! ```
//! use tclcomm::{Channel, Config, Dispatcher, Script};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // A server whose received scripts run registered Rust commands.
//! let commands = Dispatcher::new();
//! commands.register("add", |_call, args| {
//!     let sum: i64 = args.iter().map(|a| a.parse::<i64>().unwrap_or(0)).sum();
//!     Ok(sum.to_string())
//! });
//! let server = Channel::new(Config::listening().evaluator(commands)).await?;
//!
//! // A client (not listening: its id is 0) sends to the server's id.
//! let client = Channel::new(Config::new()).await?;
//! assert_eq!(client.send(server.self_id(), "add 1 2 39").await?, "42");
//!
//! // Errors come back typed, with Tcl's message.
//! let err = client.send(server.self_id(), "nosuch").await.unwrap_err();
//! assert_eq!(err.to_string(), "invalid command name \"nosuch\"");
//!
//! // Several words are fragments, joined by the receiver (comm's double evaluation).
//! assert_eq!(client.send(server.self_id(), Script::words(["add", "1 2"])).await?, "3");
//! # Ok::<(), tclcomm::Error>(())
//! # }).unwrap();
//! ```
//!
//! The pieces:
//! - [`Channel`]: listen, send (sync, async, with a callback, with a
//!   deadline), connect, shutdown, abort, destroy, configure, hooks.
//! - [`Evaluator`]: what runs received scripts. [`Dispatcher`] parses them
//!   by Tcl's rules and runs registered Rust functions; any evaluator may
//!   answer later through its [`Responder`] (comm's `return_async`).
//! - [`Transport`]: TCP, or TLS (rustls) to talk to `tls::socket` peers.
//! - [`blocking`]: the same API without async.
//! - [`transfer`]: bulk data beside comm (tcllib's `transfer::connect`,
//!   transmitter and receiver): one raw TCP or TLS connection, active or
//!   passive.
//! - [`Limits`]: bounds on message size, handshake, connections and
//!   unread output, so a hostile peer cannot exhaust a channel.
//!
//! The library never prints; it logs through `tracing`.

pub mod blocking;
mod channel;
mod config;
pub mod dispatch;
mod error;
mod evaluator;
mod hooks;
pub mod transfer;
mod transport;

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use channel::{CallbackInfo, Channel, Script, channels};
pub use config::{Config, Limits, Port};
pub use dispatch::{Dispatcher, TclError};
pub use error::{Error, RemoteError, outcome_to_result};
pub use evaluator::{
    Blocking, Evaluator, Incoming, Responder, dispatch as dispatch_request, remoteid,
};
pub use hooks::{
    ConnectedEvent, ConnectingEvent, EvalDecision, EvalEvent, HookKind, IncomingEvent, LostEvent,
    Refusal, ReplyEvent,
};
pub use tclcomm_wire::auth::{AuthConfig, CookieError, Secret, read_or_create_cookie};
pub use tclcomm_wire::engine::RequestKind;
pub use tclcomm_wire::{Code, Id, Outcome, Serial};
pub use transport::{TlsConfig, TlsError, Transport};
