//! comm messages: `[list [list instr serial payload]]` + LF.

use thiserror::Error;

use crate::list::{format_list, parse_list, quote_element};

/// A transaction serial. Kept as the peer's exact text, since a reply must
/// echo it unchanged; our own serials are decimal integers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(pub String);

impl From<u64> for Serial {
    fn from(n: u64) -> Self {
        Serial(n.to_string())
    }
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Tcl completion code as carried in `return -code <code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Code {
    /// 0, `ok`, or empty.
    Ok,
    /// 1 or `error`.
    Error,
    /// 2 or `return`.
    Return,
    /// 3 or `break`.
    Break,
    /// 4 or `continue`.
    Continue,
    /// Any other integer.
    Other(i64),
    /// Text that is not a valid completion code (kept verbatim).
    Invalid(String),
}

/// The payload of a `reply` or `callback`: `return -code N ?-errorinfo I
/// -errorcode C? result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The completion code.
    pub code: Code,
    /// The result (or error message).
    pub result: String,
    /// `-errorinfo`, empty when not transmitted.
    pub errorinfo: String,
    /// `-errorcode`, empty when not transmitted.
    pub errorcode: String,
}

/// One comm message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Evaluate and answer with `reply`.
    Send {
        /// The requester's serial.
        serial: Serial,
        /// The script fragments (the payload list).
        script: Vec<String>,
    },
    /// Evaluate, no answer.
    Async {
        /// The requester's serial.
        serial: Serial,
        /// The script fragments.
        script: Vec<String>,
    },
    /// Evaluate and answer with `callback`.
    Command {
        /// The requester's serial.
        serial: Serial,
        /// The script fragments.
        script: Vec<String>,
    },
    /// The answer to a `send`.
    Reply {
        /// The serial of the `send` answered.
        serial: Serial,
        /// The outcome.
        outcome: Outcome,
    },
    /// The answer to a `command`.
    Callback {
        /// The serial of the `command` answered.
        serial: Serial,
        /// The outcome.
        outcome: Outcome,
    },
    /// The server's protocol version (`{vers 3}`).
    Vers {
        /// The version text, from the serial position.
        version: String,
    },
    /// Any other instruction: kept so that the runtime can ignore it as tcllib does.
    Unknown {
        /// All words of the message.
        words: Vec<String>,
    },
}

/// A received word that is not a comm message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The word is not a Tcl list.
    #[error("malformed message: {0}")]
    List(#[from] crate::ListError),
    /// The word is a list, but the payload of a `send`, `async`, `command`,
    /// `reply` or `callback` is not. The instruction and serial are known, so
    /// a `send` or `command` can still be answered with an error.
    #[error("malformed payload of {instruction} {serial}: {error}")]
    Payload {
        /// The instruction (`send`, `async`, `command`, `reply`, `callback`).
        instruction: String,
        /// The serial of the message.
        serial: Serial,
        /// Why the payload is not a list.
        error: crate::ListError,
    },
}

impl Code {
    /// Reads a completion code as tcllib's requester sees it: empty and `0`
    /// are OK; the names Tcl's `return -code` accepts (`ok`, `error`,
    /// `return`, `break`, `continue`) and Tcl 8.6 integers (with optional
    /// surrounding whitespace, sign, `0x`/`0o`/`0b` prefix, leading-zero
    /// octal) map to their code; anything else is kept as
    /// [`Code::Invalid`], which the requester turns into Tcl's
    /// `bad completion code` error.
    pub fn parse(text: &str) -> Code {
        match text {
            "" | "ok" => return Code::Ok,
            "error" => return Code::Error,
            "return" => return Code::Return,
            "break" => return Code::Break,
            "continue" => return Code::Continue,
            _ => {}
        }
        match tcl_int(text) {
            Some(n) => Code::from(n),
            None => Code::Invalid(text.to_owned()),
        }
    }

    /// The numeric code, `None` for [`Code::Invalid`].
    pub fn number(&self) -> Option<i64> {
        Some(match self {
            Code::Ok => 0,
            Code::Error => 1,
            Code::Return => 2,
            Code::Break => 3,
            Code::Continue => 4,
            Code::Other(n) => *n,
            Code::Invalid(_) => return None,
        })
    }
}

impl From<i64> for Code {
    fn from(n: i64) -> Self {
        match n {
            0 => Code::Ok,
            1 => Code::Error,
            2 => Code::Return,
            3 => Code::Break,
            4 => Code::Continue,
            n => Code::Other(n),
        }
    }
}

/// Prints the code as the executor writes it on the wire: the number, or
/// the invalid text verbatim.
impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.number(), self) {
            (Some(n), _) => write!(f, "{n}"),
            (None, Code::Invalid(s)) => f.write_str(s),
            (None, _) => Ok(()),
        }
    }
}

/// Tcl 8.6's integer syntax as `return -code` reads it (`TclGetIntFromObj`):
/// whitespace around, optional sign, decimal, `0x` hex, `0o`/leading-zero
/// octal, `0b` binary; values up to the range of an unsigned 32-bit int,
/// wrapped into a signed one as Tcl does.
fn tcl_int(text: &str) -> Option<i64> {
    let t = text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'));
    let (neg, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = match t.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16, &t[2..]),
        [b'0', b'o' | b'O', ..] => (8, &t[2..]),
        [b'0', b'b' | b'B', ..] => (2, &t[2..]),
        [b'0', _, ..] => (8, &t[1..]),
        _ => (10, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    let n = u64::from_str_radix(digits, radix).ok()?;
    let n = i64::try_from(n).ok()?;
    let n = if neg { -n } else { n };
    if n < i64::from(i32::MIN) || n > i64::from(u32::MAX) {
        return None;
    }
    // Truncation to 32 bits is exactly Tcl's wrap of an unsigned int.
    Some(i64::from(n as u32 as i32))
}

impl Outcome {
    /// A successful outcome.
    pub fn ok(result: impl Into<String>) -> Outcome {
        Outcome::with_code(Code::Ok, result)
    }

    /// An error outcome with its `-errorinfo` and `-errorcode`.
    pub fn error(
        result: impl Into<String>,
        errorinfo: impl Into<String>,
        errorcode: impl Into<String>,
    ) -> Outcome {
        Outcome {
            code: Code::Error,
            result: result.into(),
            errorinfo: errorinfo.into(),
            errorcode: errorcode.into(),
        }
    }

    /// An outcome with any code and no error information.
    pub fn with_code(code: Code, result: impl Into<String>) -> Outcome {
        Outcome {
            code,
            result: result.into(),
            errorinfo: String::new(),
            errorcode: String::new(),
        }
    }

    /// The payload as the executor builds it:
    /// `return -code <code> <result>`, or for code 1
    /// `return -code 1 -errorinfo <errorinfo> -errorcode <errorcode> <result>`.
    pub fn encode(&self) -> String {
        let code = self.code.to_string();
        if self.code == Code::Error {
            format_list([
                "return",
                "-code",
                &code,
                "-errorinfo",
                &self.errorinfo,
                "-errorcode",
                &self.errorcode,
                &self.result,
            ])
        } else {
            format_list(["return", "-code", &code, &self.result])
        }
    }

    /// Reads a `reply`/`callback` payload as tcllib's requester does: the
    /// last element is the result; the elements between the first and the
    /// last are switch/value pairs of which only `-code`, `-errorinfo` and
    /// `-errorcode` count (the last of each wins, a missing value is empty);
    /// the first element is not looked at. A single element is the result.
    pub fn decode(payload: &str) -> Result<Outcome, crate::ListError> {
        let mut words = parse_list(payload)?;
        let result = words.pop().unwrap_or_default();
        let (mut code, mut errorinfo, mut errorcode) =
            (String::new(), String::new(), String::new());
        for pair in words.get(1..).unwrap_or_default().chunks(2) {
            let value = pair.get(1).cloned().unwrap_or_default();
            match pair[0].as_str() {
                "-code" => code = value,
                "-errorinfo" => errorinfo = value,
                "-errorcode" => errorcode = value,
                _ => {}
            }
        }
        Ok(Outcome {
            code: Code::parse(&code),
            result,
            errorinfo,
            errorcode,
        })
    }
}

impl Message {
    /// The bytes of this message on the wire: `[list [list instr serial payload]]` + LF.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        self.encode_into(&mut out);
        out.into_bytes()
    }

    /// Appends the wire form of this message (see [`Message::encode`]) to
    /// `out`, so that a driver can batch messages in one buffer.
    ///
    /// `Vers` encodes as `{vers <version>}` + LF; the accepting side's
    /// handshake answer with its CRLF is
    /// [`VERS3_ANSWER`](crate::handshake::VERS3_ANSWER).
    pub fn encode_into(&self, out: &mut String) {
        match self {
            Message::Send { serial, script } => write_request(out, "send", serial, script),
            Message::Async { serial, script } => write_request(out, "async", serial, script),
            Message::Command { serial, script } => write_request(out, "command", serial, script),
            Message::Reply { serial, outcome } => {
                write_message(out, &["reply", &serial.0, &outcome.encode()]);
            }
            Message::Callback { serial, outcome } => {
                write_message(out, &["callback", &serial.0, &outcome.encode()]);
            }
            Message::Vers { version } => write_message(out, &["vers", version]),
            Message::Unknown { words } => write_message(out, words),
        }
    }

    /// Decodes one framed word (as returned by [`crate::Framer::next_word`]).
    ///
    /// The word is a list: instruction, serial (verbatim), payload; missing
    /// elements are empty and further ones are ignored, as in tcllib. The
    /// payload of `send`/`async`/`command` is the list of script fragments
    /// (so `send 1` has none); that of `reply`/`callback` is an
    /// [`Outcome`]. `vers` carries the version in the serial position. Any
    /// other instruction gives [`Message::Unknown`] with all the words.
    pub fn decode(word: &str) -> Result<Message, MessageError> {
        let words = parse_list(word)?;
        let field = |i: usize| words.get(i).map(String::as_str).unwrap_or_default();
        let serial = || Serial(field(1).to_owned());
        let payload_error = |error| MessageError::Payload {
            instruction: field(0).to_owned(),
            serial: serial(),
            error,
        };
        let script = || parse_list(field(2)).map_err(payload_error);
        let outcome = || Outcome::decode(field(2)).map_err(payload_error);
        Ok(match field(0) {
            "send" => Message::Send {
                serial: serial(),
                script: script()?,
            },
            "async" => Message::Async {
                serial: serial(),
                script: script()?,
            },
            "command" => Message::Command {
                serial: serial(),
                script: script()?,
            },
            "reply" => Message::Reply {
                serial: serial(),
                outcome: outcome()?,
            },
            "callback" => Message::Callback {
                serial: serial(),
                outcome: outcome()?,
            },
            "vers" => Message::Vers {
                version: field(1).to_owned(),
            },
            _ => Message::Unknown { words },
        })
    }

    /// The serial of a request or an answer; `None` for `vers` and unknown
    /// instructions.
    pub fn serial(&self) -> Option<&Serial> {
        match self {
            Message::Send { serial, .. }
            | Message::Async { serial, .. }
            | Message::Command { serial, .. }
            | Message::Reply { serial, .. }
            | Message::Callback { serial, .. } => Some(serial),
            Message::Vers { .. } | Message::Unknown { .. } => None,
        }
    }
}

fn write_request(out: &mut String, instruction: &str, serial: &Serial, script: &[String]) {
    let payload = format_list(script);
    write_message(out, &[instruction, &serial.0, &payload]);
}

/// `[list [list words...]]` + LF, built in one buffer sized for the common
/// case (brace quoting adds a few bytes).
fn write_message<S: AsRef<str>>(out: &mut String, words: &[S]) {
    let len: usize = words.iter().map(|w| w.as_ref().len() + 3).sum();
    let mut inner = String::with_capacity(len);
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            inner.push(' ');
        }
        quote_element(w.as_ref(), i == 0, &mut inner);
    }
    out.reserve(inner.len() + 3);
    quote_element(&inner, true, out);
    out.push('\n');
}
