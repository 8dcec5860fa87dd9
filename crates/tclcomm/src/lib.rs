//! # tclcomm: Tcl's `comm` protocol for Rust programs
//!
//! This crate will hold the tokio runtime that speaks tcllib `comm` 4.7 with
//! Tcl peers, driving the sans-IO engine of [`tclcomm_wire`]. Today it
//! provides the piece that executes what peers send:
//!
//! - [`dispatch`]: a pure-Rust evaluator of received scripts, running
//!   registered Rust functions as Tcl commands, with Tcl's parsing rules,
//!   completion codes, errorInfo and errorCode.
//!
//! ```
//! use tclcomm::dispatch::Dispatcher;
//!
//! let d = Dispatcher::new();
//! d.register("greet", |_call, args| Ok(format!("hello {}", args.join(" "))));
//! assert_eq!(d.eval("greet [list a b] {c d}").unwrap(), "hello a b c d");
//! assert_eq!(d.eval("nosuch").unwrap_err().message(), "invalid command name \"nosuch\"");
//! ```
//!
//! With the `testing` feature, `tclcomm::testing` starts real `tclsh` comm
//! peers for integration tests.

pub mod dispatch;

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
