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
//! - [`names`]: names instead of port numbers: an nns-compatible name
//!   server and client (tcllib's `nameserv`), and name -> [`Id`] resolution.
//! - [`Limits`]: bounds on message size, handshake, connections and
//!   unread output, so a hostile peer cannot exhaust a channel.
//!
//! The library never prints; it logs through `tracing`.
//!
//! # Using the crate
//!
//! In your `Cargo.toml` (the crate is not on crates.io: depend on this
//! repository by path or by git), with tokio for `#[tokio::main]`:
//!
//! ```toml
//! [dependencies]
//! tclcomm = { path = "../tclcomm/crates/tclcomm" }   # or: git = "URL of this repository"
//! tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//! ```
//!
//! A whole program: parse an id as the command line does, send with a
//! deadline, and tell the failures apart by [`Error`] variant. (It serves
//! itself so that it runs anywhere; against a Tcl application, leave the
//! server out and parse the application's id, `::comm::comm self` there.)
//!
//! ```
//! use std::time::Duration;
//!
//! use tclcomm::{Channel, Config, Dispatcher, Error, Id};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Ids: "4500" (127.0.0.1), "host:4500", "[::1]:4500" or comm's "4500 host".
//!     let example: Id = "[::1]:4500".parse()?;
//!     assert_eq!(example.to_string(), "4500 ::1");
//!
//!     let commands = Dispatcher::new();
//!     commands.register("add", |_call, args| {
//!         let sum: i64 = args.iter().map(|a| a.parse::<i64>().unwrap_or(0)).sum();
//!         Ok(sum.to_string())
//!     });
//!     let server = Channel::new(Config::listening().evaluator(commands)).await?;
//!     let peer: Id = server.self_id().to_string().parse()?;
//!
//!     let client = Channel::new(Config::new()).await?;
//!     for script in ["add 1 2 39", "nosuch"] {
//!         match client.send_timeout(peer.clone(), script, Duration::from_secs(5)).await {
//!             Ok(result) => println!("{script} -> {result}"),
//!             // The script ran and failed there: Tcl's message, errorInfo, errorCode.
//!             Err(Error::Remote(e)) => println!("{script} failed: {} ({})", e.message, e.errorcode),
//!             // No connection: nothing listens there, or the host is unknown.
//!             Err(Error::Connect(why)) => eprintln!("cannot connect to {peer}: {why}"),
//!             // The deadline passed (the script may still be running there).
//!             Err(Error::Timeout { id, timeout }) => eprintln!("no answer from {id} in {timeout:?}"),
//!             // The peer went away (exited, dropped us, or is not a comm peer).
//!             Err(Error::Lost(reason)) => eprintln!("lost {peer}: {reason}"),
//!             // Listen, Config, Destroyed: this program's own set-up.
//!             Err(other) => return Err(other.into()),
//!         }
//!     }
//!     Ok(())
//! }
//! ```

pub mod blocking;
mod channel;
mod config;
pub mod dispatch;
mod error;
mod evaluator;
mod hooks;
pub mod names;
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
