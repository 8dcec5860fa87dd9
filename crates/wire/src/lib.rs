//! # tclcomm-wire: the sans-IO engine of Tcl's `comm` protocol
//!
//! This crate knows the bytes that tcllib `comm` 4.7 writes and reads, and
//! nothing about sockets, threads or clocks: bytes and requests go in, and
//! messages, bytes to write and decisions come out. Both drivers (the tokio
//! runtime in `tclcomm` and the Tcl event-loop extension in `tclcomm-tcl`)
//! drive this one engine.
//!
//! ```
//! use tclcomm_wire::{Framer, Message, Serial, list};
//!
//! // Format a message exactly as tcllib comm does...
//! let msg = Message::Send { serial: Serial::from(1), script: vec!["set a 1".into()] };
//! let bytes = msg.encode();
//! assert_eq!(bytes, b"{send 1 {{set a 1}}}\n");
//!
//! // ...and take it apart again, fed one byte at a time.
//! let mut framer = Framer::default();
//! let mut got = Vec::new();
//! for b in &bytes {
//!     framer.feed(std::slice::from_ref(b));
//!     while let Some(word) = framer.next_word().unwrap() {
//!         got.push(Message::decode(&word).unwrap());
//!     }
//! }
//! assert_eq!(got, vec![msg]);
//! assert_eq!(list::format_list(["a b", "c"]), "{a b} c");
//! ```
//!
//! Modules:
//! - [`list`]: Tcl 8.6 list formatting and parsing, byte for byte.
//! - [`script`]: Tcl's `concat` and `info complete`.
//! - [`tcl_utf8`]: Tcl 8.6's lenient UTF-8 decoder, for bytes that are not UTF-8.
//! - [`framer`]: the incremental, linear-time, bounded receiver.
//! - [`handshake`]: the `{3 2} <port>` offer and the `{vers 3}` answer.
//! - [`message`]: the five instructions (send/async/command/reply/callback), `vers`,
//!   and the `return -code ...` outcome.
//! - [`id`]: comm ids (`port` or `{port host}`).
//! - [`engine`]: the channel state machine (connections, handshakes, serials,
//!   pending calls, loss, time and limits) that both drivers run.
//! - [`answer`]: what a caller gets for an answer or a loss (sync result or
//!   error, callback arguments), the same in both drivers.

pub mod answer;
pub mod auth;
pub mod engine;
pub mod framer;
pub mod handshake;
pub mod id;
pub mod list;
pub mod message;
pub mod script;
pub mod tcl_utf8;
#[cfg(test)]
mod test_rng;

pub use framer::{DEFAULT_MAX_MESSAGE, FrameError, Framer};
pub use handshake::{HandshakeError, Offer};
pub use id::{Id, IdError};
pub use list::ListError;
pub use message::{Code, Message, MessageError, Outcome, Serial};
