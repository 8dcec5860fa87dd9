//! What a caller gets for an answer, or for the loss of its connection:
//! the one mapping both drivers use (spec §4, `send` and `send -command`).
//!
//! ```
//! use tclcomm_wire::answer::{self, CallbackArgs};
//! use tclcomm_wire::engine::Loss;
//! use tclcomm_wire::{Code, Id, Outcome};
//!
//! assert_eq!(answer::sync_result(Outcome::ok("42")), Ok("42".to_string()));
//! let failure = answer::sync_result(Outcome::with_code(Code::Break, "")).unwrap_err();
//! assert_eq!(failure.message, "invoked \"break\" outside of a loop");
//! assert_eq!(failure.errorcode.as_deref(), Some("TCL RESULT UNEXPECTED"));
//!
//! let lost = CallbackArgs::from_loss(&Loss::Closed);
//! assert_eq!(
//!     lost.to_list(&Id::port(45001), 7, "::comm::comm"),
//!     ["-id", "45001", "-serial", "7", "-chan", "::comm::comm", "-code", "-1",
//!      "-errorcode", "NONE", "-errorinfo", "", "-result",
//!      "target application died or connection lost"],
//! );
//! ```

use crate::engine::Loss;
use crate::id::Id;
use crate::message::{Code, Outcome};

/// A synchronous `send` that did not return a result: what the caller's
/// `send` raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The completion code the caller's `send` ends with: 1, or the remote
    /// code itself for codes of 5 and more.
    pub return_code: i64,
    /// The error message (the remote result, or Tcl's own text for
    /// break/continue and a bad code, or the loss reason).
    pub message: String,
    /// The `errorInfo` to set: `Some` for a remote error (the remote
    /// errorInfo), `None` where Tcl builds it as for a local error.
    pub errorinfo: Option<String>,
    /// The `errorCode` to set, `None` where Tcl leaves its default.
    pub errorcode: Option<String>,
    /// The answer as it came, when there was one (`None` on loss).
    pub outcome: Option<Box<Outcome>>,
}

impl Failure {
    /// The connection went away before the answer: the caller's error is
    /// the loss reason (tcllib's text), with Tcl's default errorCode.
    pub fn from_loss(loss: &Loss) -> Failure {
        Failure {
            return_code: 1,
            message: loss.to_string(),
            errorinfo: None,
            errorcode: None,
            outcome: None,
        }
    }
}

/// Turns an answer into what a synchronous `send` returns, as tcllib's
/// caller sees it: codes 0 and 2 (and `ok`/`return`) are results; 1 is an
/// error carrying the remote errorInfo and errorCode; 3 and 4 become Tcl's
/// "outside of a loop" errors; other integers end the caller's `send` with
/// that code; text that is no code gives Tcl's `bad completion code` error.
pub fn sync_result(outcome: Outcome) -> Result<String, Failure> {
    let (return_code, message, errorinfo, errorcode) = match &outcome.code {
        Code::Ok | Code::Return => return Ok(outcome.result),
        Code::Error => (
            1,
            outcome.result.clone(),
            Some(outcome.errorinfo.clone()),
            Some(outcome.errorcode.clone()),
        ),
        Code::Break | Code::Continue => (
            1,
            format!(
                "invoked \"{}\" outside of a loop",
                if outcome.code == Code::Break {
                    "break"
                } else {
                    "continue"
                }
            ),
            None,
            Some("TCL RESULT UNEXPECTED".to_string()),
        ),
        Code::Other(n) => (*n, outcome.result.clone(), None, None),
        // Text other than a canonical number (kept by `Outcome::decode`):
        // tcllib's `send` does `return -code <text> <result>` with it.
        Code::Invalid(text) if text.is_empty() => return Ok(outcome.result),
        Code::Invalid(text) => match Code::parse(text) {
            Code::Ok | Code::Return => return Ok(outcome.result),
            // A plain error: no remote errorInfo or errorCode.
            Code::Error => (1, outcome.result.clone(), None, None),
            c @ (Code::Break | Code::Continue) => (
                1,
                format!(
                    "invoked \"{}\" outside of a loop",
                    if c == Code::Break {
                        "break"
                    } else {
                        "continue"
                    }
                ),
                None,
                Some("TCL RESULT UNEXPECTED".to_string()),
            ),
            Code::Other(n) => (n, outcome.result.clone(), None, None),
            Code::Invalid(_) => (
                1,
                format!(
                    "bad completion code \"{text}\": must be ok, error, return, break, continue, or an integer"
                ),
                None,
                Some("TCL RESULT ILLEGAL_CODE".to_string()),
            ),
        },
    };
    Err(Failure {
        return_code,
        message,
        errorinfo,
        errorcode,
        outcome: Some(Box::new(outcome)),
    })
}

/// What a `send -command` callback is given besides `-id`, `-serial` and
/// `-chan`: tcllib appends `-code C -errorcode E -errorinfo I -result R`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackArgs {
    /// The completion code as text (`-1` when the connection was lost).
    pub code: String,
    /// `-errorcode`.
    pub errorcode: String,
    /// `-errorinfo`.
    pub errorinfo: String,
    /// `-result`.
    pub result: String,
}

impl CallbackArgs {
    /// The arguments for an answer, its code as sent.
    pub fn from_outcome(outcome: &Outcome) -> CallbackArgs {
        CallbackArgs {
            code: outcome.code.to_string(),
            errorcode: outcome.errorcode.clone(),
            errorinfo: outcome.errorinfo.clone(),
            result: outcome.result.clone(),
        }
    }

    /// The arguments when the connection went away first: code -1, errorCode
    /// `NONE`, no errorInfo, the loss reason as result (tcllib's).
    pub fn from_loss(loss: &Loss) -> CallbackArgs {
        CallbackArgs {
            code: "-1".to_string(),
            errorcode: "NONE".to_string(),
            errorinfo: String::new(),
            result: loss.to_string(),
        }
    }

    /// The whole argument list appended to the callback command, in
    /// tcllib's order.
    pub fn to_list(&self, id: &Id, serial: u64, chan: &str) -> [String; 14] {
        [
            "-id".into(),
            id.as_str().into(),
            "-serial".into(),
            serial.to_string(),
            "-chan".into(),
            chan.into(),
            "-code".into(),
            self.code.clone(),
            "-errorcode".into(),
            self.errorcode.clone(),
            "-errorinfo".into(),
            self.errorinfo.clone(),
            "-result".into(),
            self.result.clone(),
        ]
    }
}
