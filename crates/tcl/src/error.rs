//! [`Exception`]: a non-OK Tcl completion, and [`EvalOutcome`].

use std::ffi::c_int;

use crate::sys;
use crate::{Interp, Obj};

/// A Tcl exception: an error, or any other non-OK completion code, with the
/// return options that matter across interpreters.
///
/// As the error of a Rust command it becomes that command's completion: a
/// plain error (`code` 1, no `errorinfo`) lets Tcl add the usual
/// `while executing …` lines; with `errorinfo` set, or a code other than 1,
/// it is raised with `Tcl_SetReturnOptions(-code … -level 0 …)`, which is how
/// a remote peer's `-code/-errorinfo/-errorcode` are re-raised locally.
///
/// It holds only strings, so it can cross threads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{result}")]
pub struct Exception {
    /// The completion code: 1 error, 2 return, 3 break, 4 continue, or other.
    pub code: i32,
    /// The result, i.e. the error message for code 1.
    pub result: String,
    /// `-errorcode` (a Tcl list as text), if known.
    pub errorcode: Option<String>,
    /// `-errorinfo` (the stack trace), if known.
    pub errorinfo: Option<String>,
    /// `-errorline` to set with `-errorinfo`: the line Tcl reports for the
    /// frame around the command that raised it (`("uplevel" body line N)`).
    /// `None` leaves Tcl's current value.
    pub errorline: Option<i32>,
}

impl Exception {
    /// A plain error with message `msg` (errorCode `NONE`).
    pub fn error(msg: impl Into<String>) -> Exception {
        Exception {
            code: sys::TCL_ERROR,
            result: msg.into(),
            errorcode: None,
            errorinfo: None,
            errorline: None,
        }
    }

    /// An error with an errorCode (a Tcl list given as text, e.g.
    /// `"COMM NOPEER 9999"`).
    pub fn with_errorcode(errorcode: impl Into<String>, msg: impl Into<String>) -> Exception {
        Exception {
            errorcode: Some(errorcode.into()),
            ..Exception::error(msg)
        }
    }

    /// A completion with code `code` and all three options, e.g. to
    /// re-raise what a remote interpreter returned.
    pub fn with_options(
        code: i32,
        result: impl Into<String>,
        errorinfo: Option<String>,
        errorcode: Option<String>,
    ) -> Exception {
        Exception {
            code,
            result: result.into(),
            errorcode,
            errorinfo,
            errorline: None,
        }
    }

    /// The same exception, raised as if from line `line` of the script
    /// around it (`-errorline`).
    pub fn at_line(self, line: i32) -> Exception {
        Exception {
            errorline: Some(line),
            ..self
        }
    }

    /// The error a panicking Rust callback turns into: errorCode `RUST PANIC`.
    pub fn panic(msg: &str) -> Exception {
        Exception::with_errorcode("RUST PANIC", format!("Rust panic: {msg}"))
    }

    /// Leaves this exception in the interp (result and options) and returns
    /// the completion code a command should return.
    pub(crate) fn apply(&self, interp: Interp<'_>) -> c_int {
        let raw = interp.raw();
        let result = Obj::string(&self.result);
        if self.code == sys::TCL_ERROR && self.errorinfo.is_none() {
            // SAFETY: live interp on this thread; Tcl takes its own refs.
            unsafe {
                sys::Tcl_SetObjResult(raw, result.as_ptr());
                if let Some(ec) = &self.errorcode {
                    sys::Tcl_SetObjErrorCode(raw, Obj::string(ec).as_ptr());
                }
            }
            return sys::TCL_ERROR;
        }
        let mut opts = Obj::list_of(["-code", &self.code.to_string(), "-level", "0"]);
        let line = self.errorline.map(|n| n.to_string());
        for (k, v) in [
            ("-errorcode", &self.errorcode),
            ("-errorinfo", &self.errorinfo),
            ("-errorline", &line),
        ] {
            if let Some(v) = v {
                // Appending to a fresh, unshared list cannot fail.
                let _ = opts.list_append(&Obj::string(k));
                let _ = opts.list_append(&Obj::string(v));
            }
        }
        // SAFETY: live interp; `opts` is a valid dict (even-length list).
        unsafe {
            sys::Tcl_SetObjResult(raw, result.as_ptr());
            sys::Tcl_SetReturnOptions(raw, opts.as_ptr())
        }
    }
}

/// The typed outcome of an evaluation: what `catch {…} result options`
/// would see.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EvalOutcome {
    /// The completion code (0 ok, 1 error, 2 return, 3 break, 4 continue, …).
    pub code: i32,
    /// The result (the error message for code 1).
    pub result: String,
    /// `-errorinfo`; empty unless `code` is 1.
    pub errorinfo: String,
    /// `-errorcode`; empty unless `code` is 1.
    pub errorcode: String,
}

impl EvalOutcome {
    /// The outcome of an evaluation's result: its code, result and error
    /// options.
    pub(crate) fn of(r: Result<crate::Obj, Exception>) -> EvalOutcome {
        match r {
            Ok(r) => EvalOutcome {
                code: sys::TCL_OK,
                result: r.to_str().into_owned(),
                ..EvalOutcome::default()
            },
            Err(e) => EvalOutcome {
                code: e.code,
                result: e.result,
                errorinfo: e.errorinfo.unwrap_or_default(),
                errorcode: e.errorcode.unwrap_or_default(),
            },
        }
    }

    /// Whether the code is 0 (`TCL_OK`).
    pub fn is_ok(&self) -> bool {
        self.code == sys::TCL_OK
    }

    /// The result for code 0, an [`Exception`] otherwise.
    pub fn into_result(self) -> Result<String, Exception> {
        if self.is_ok() {
            return Ok(self.result);
        }
        let is_err = self.code == sys::TCL_ERROR;
        Err(Exception {
            code: self.code,
            result: self.result,
            errorcode: is_err.then_some(self.errorcode),
            errorinfo: is_err.then_some(self.errorinfo),
            errorline: None,
        })
    }
}
