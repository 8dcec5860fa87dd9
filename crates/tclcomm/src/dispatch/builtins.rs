//! The Tcl commands comm users expect every peer to have.

use super::list::{concat, format_list, parse_list};
use super::{CODE_BREAK, CODE_CONTINUE, CODE_ERROR, CODE_RETURN, Dispatcher, TclError};

pub(super) fn install(d: &Dispatcher) {
    d.register("list", |_, args| Ok(format_list(args)));
    d.register("concat", |_, args| Ok(concat(args)));
    d.register("error", |_, args| error(args));
    d.register("return", |_, args| return_(args));
    d.register("break", |_, args| bare_code(args, "break", CODE_BREAK));
    d.register("continue", |_, args| {
        bare_code(args, "continue", CODE_CONTINUE)
    });
}

fn bare_code(args: &[String], name: &str, code: i32) -> Result<String, TclError> {
    if args.is_empty() {
        Err(TclError::with_code(code, ""))
    } else {
        Err(TclError::wrong_args(name))
    }
}

/// `error message ?errorInfo? ?errorCode?`
fn error(args: &[String]) -> Result<String, TclError> {
    let [message, rest @ ..] = args else {
        return Err(TclError::wrong_args(
            "error message ?errorInfo? ?errorCode?",
        ));
    };
    if rest.len() > 2 {
        return Err(TclError::wrong_args(
            "error message ?errorInfo? ?errorCode?",
        ));
    }
    let mut e = TclError::new(message.as_str());
    if let Some(info) = rest.first() {
        e = e.with_errorinfo(info.as_str());
    }
    if let Some(code) = rest.get(1) {
        e = e.with_errorcode(code.as_str());
    }
    Err(e)
}

/// `return ?-code c? ?-level n? ?-errorcode ec? ?-errorinfo ei? ?-options d?
/// ?-key value ...? ?result?`. Unknown option keys are accepted and ignored,
/// as Tcl keeps them in the options dictionary.
fn return_(args: &[String]) -> Result<String, TclError> {
    let (pairs, result) = if args.len() % 2 == 1 {
        (&args[..args.len() - 1], args[args.len() - 1].as_str())
    } else {
        (args, "")
    };
    let mut opts = ReturnOptions::default();
    for pair in pairs.chunks_exact(2) {
        if pair[0] == "-options" {
            let dict = parse_list(&pair[1])
                .ok()
                .filter(|l| l.len() % 2 == 0)
                .ok_or_else(|| {
                    TclError::new(format!("expected dict but got \"{}\"", pair[1]))
                        .with_errorcode("TCL RESULT ILLEGAL_OPTIONS")
                })?;
            for kv in dict.chunks_exact(2) {
                opts.set(&kv[0], &kv[1]);
            }
        } else {
            opts.set(&pair[0], &pair[1]);
        }
    }
    let code = match &opts.code {
        None => 0,
        Some(c) => completion_code(c).ok_or_else(|| {
            TclError::new(format!(
                "bad completion code \"{c}\": must be ok, error, return, break, continue, or an integer"
            ))
            .with_errorcode("TCL RESULT ILLEGAL_CODE")
        })?,
    };
    let level = match &opts.level {
        None => 1,
        Some(l) => tcl_int(l).filter(|n| *n >= 0).ok_or_else(|| {
            TclError::new(format!(
                "bad -level value: expected non-negative integer but got \"{l}\""
            ))
            .with_errorcode("TCL RESULT ILLEGAL_LEVEL")
        })?,
    };
    let code = if level == 0 { code } else { CODE_RETURN };
    if code == 0 {
        return Ok(result.to_owned());
    }
    let mut e = TclError::with_code(code, result);
    if let Some(ec) = opts.errorcode {
        e = e.with_errorcode(ec);
    }
    if code == CODE_ERROR
        && let Some(ei) = opts.errorinfo
    {
        e = e.with_errorinfo(ei);
    }
    Err(e)
}

#[derive(Default)]
struct ReturnOptions {
    code: Option<String>,
    level: Option<String>,
    errorcode: Option<String>,
    errorinfo: Option<String>,
}

impl ReturnOptions {
    fn set(&mut self, key: &str, value: &str) {
        let slot = match key {
            "-code" => &mut self.code,
            "-level" => &mut self.level,
            "-errorcode" => &mut self.errorcode,
            "-errorinfo" => &mut self.errorinfo,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }
}

/// A completion code by name (exact) or as an integer.
fn completion_code(s: &str) -> Option<i32> {
    match s {
        "ok" => Some(0),
        "error" => Some(CODE_ERROR),
        "return" => Some(CODE_RETURN),
        "break" => Some(CODE_BREAK),
        "continue" => Some(CODE_CONTINUE),
        _ => tcl_int(s),
    }
}

/// An integer as Tcl 8.6's Tcl_GetIntFromObj reads it: surrounding
/// whitespace, a sign, `0x`/`0o`/`0b`/`0d` prefixes, and a leading `0`
/// meaning octal.
fn tcl_int(s: &str) -> Option<i32> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = match t.get(..2) {
        Some("0x" | "0X") => (16, &t[2..]),
        Some("0o" | "0O") => (8, &t[2..]),
        Some("0b" | "0B") => (2, &t[2..]),
        Some("0d" | "0D") => (10, &t[2..]),
        _ if t.len() > 1 && t.starts_with('0') => (8, &t[1..]),
        _ => (10, t),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::tcl_int;

    #[test]
    fn tcl_integers() {
        assert_eq!(tcl_int(" 7 "), Some(7));
        assert_eq!(tcl_int("0x10"), Some(16));
        assert_eq!(tcl_int("01"), Some(1));
        assert_eq!(tcl_int("010"), Some(8));
        assert_eq!(tcl_int("09"), None);
        assert_eq!(tcl_int("-5"), Some(-5));
        assert_eq!(tcl_int("0b101"), Some(5));
        assert_eq!(tcl_int(""), None);
        assert_eq!(tcl_int("x"), None);
        assert_eq!(tcl_int("0"), Some(0));
    }
}
