//! Errors of the runtime.

use std::time::Duration;

use tclcomm_wire::{Code, Id, Outcome};
use thiserror::Error;

/// The remote script failed (or ended with a code a caller cannot take as a
/// result: error, break, continue, or a code of 5 or more).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct RemoteError {
    /// The completion code the remote side sent.
    pub code: Code,
    /// The message: the remote result, or for break/continue Tcl's own
    /// `invoked "break" outside of a loop` text, as tcllib's caller sees it.
    pub message: String,
    /// The remote result exactly as sent.
    pub result: String,
    /// The remote `errorInfo` (empty when not sent).
    pub errorinfo: String,
    /// The remote `errorCode` (empty when not sent; `TCL RESULT UNEXPECTED`
    /// for break/continue, as Tcl reports them).
    pub errorcode: String,
}

/// Everything that can go wrong on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Connecting to the peer failed, or a `connecting`/`connected` hook
    /// refused. The text after the prefix is tcllib's (`couldn't open socket:
    /// connection refused`, `Remote comm is anonymous; cannot connect`, ...).
    #[error("Connect to remote failed: {0}")]
    Connect(String),
    /// The remote script raised an error or ended with an exceptional code.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The connection went away while waiting; the text is the loss reason
    /// (`target application died or connection lost`, `Connection shutdown
    /// by request`, `Connection aborted by request`, or a protocol error).
    #[error("{0}")]
    Lost(String),
    /// A send with a deadline got no answer in time. A late answer is dropped.
    #[error("no answer from {id} within {timeout:?}")]
    Timeout {
        /// The peer.
        id: Id,
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The listening socket could not be opened (`couldn't open socket:
    /// address already in use`).
    #[error("couldn't open socket: {0}")]
    Listen(String),
    /// A configuration value was refused; the text is tcllib's where it has one.
    #[error("{0}")]
    Config(String),
    /// The channel was destroyed.
    #[error("channel destroyed")]
    Destroyed,
}

impl Error {
    /// The remote error, if this is one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            Error::Remote(r) => Some(r),
            _ => None,
        }
    }
}

/// Turns an answer into what a synchronous `send` returns, as tcllib's
/// caller sees it (spec §4 send): codes 0 and 2 (and `ok`/`return`) are
/// results; 1 is an error; 3 and 4 become Tcl's "outside of a loop" errors;
/// other codes are errors carrying that code.
pub fn outcome_to_result(outcome: Outcome) -> Result<String, Error> {
    let failure = match tclcomm_wire::answer::sync_result(outcome) {
        Ok(result) => return Ok(result),
        Err(failure) => failure,
    };
    let Some(outcome) = failure.outcome.map(|o| *o) else {
        return Err(Error::Lost(failure.message));
    };
    Err(Error::Remote(RemoteError {
        code: outcome.code,
        message: failure.message,
        result: outcome.result,
        errorinfo: outcome.errorinfo,
        errorcode: failure.errorcode.unwrap_or(outcome.errorcode),
    }))
}

/// Tcl's text for an I/O error, as `socket` reports it (`connection refused`,
/// `address already in use`, ...).
pub(crate) fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::AddrInUse => "address already in use".into(),
        K::AddrNotAvailable => "cannot assign requested address".into(),
        K::PermissionDenied => "permission denied".into(),
        K::TimedOut => "connection timed out".into(),
        _ => {
            let s = e.to_string();
            let s = match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            };
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
    }
}
