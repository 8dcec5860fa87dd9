//! comm messages: `[list [list instr serial payload]]` + LF.

use thiserror::Error;

use std::borrow::Cow;

use crate::list::{
    ListIter, Quoted, format_list, format_list_into, parse_list, quote_element, quote_element_cow,
    simple_elements,
};

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

    /// Reads a code received on the wire, keeping its text: only the
    /// canonical number (`0`, `1`, `7`, ...) maps to its variant; any other
    /// text (`ok`, `error`, `01`, empty, `bogus`) stays [`Code::Invalid`]
    /// verbatim. tcllib's requester looks at the text: it passes it to a
    /// `-command` callback as is, and its `send` treats only `""`, `0` and
    /// `1` itself, handing the rest to `return -code` (see
    /// [`crate::answer::sync_result`]).
    pub fn parse_exact(text: &str) -> Code {
        // One digit is its own canonical text: no parsing or formatting.
        if let [d @ b'0'..=b'9'] = text.as_bytes() {
            return Code::from(i64::from(d - b'0'));
        }
        match tcl_int(text).map(Code::from) {
            Some(c) if c.to_string() == text => c,
            _ => Code::Invalid(text.to_owned()),
        }
    }

    /// Appends the code as [`Display`](std::fmt::Display) writes it; the
    /// usual codes without going through a formatter.
    pub fn write_to(&self, out: &mut String) {
        match (self.number(), self) {
            (Some(n @ 0..=9), _) => out.push(char::from(b'0' + n as u8)),
            (Some(n), _) => {
                use std::fmt::Write as _;
                let _ = write!(out, "{n}");
            }
            (None, Code::Invalid(s)) => out.push_str(s),
            (None, _) => {}
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
        let mut out = String::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the payload (see [`Outcome::encode`]) to `out`.
    pub fn encode_into(&self, out: &mut String) {
        // What `format_list_into` gives for `return -code CODE ?-errorinfo
        // I -errorcode C? RESULT`, with the constant words written as they
        // are (they need no quoting) and the code quoted only when it is
        // not a number.
        out.reserve(self.encoded_len_hint());
        out.push_str("return -code ");
        match &self.code {
            Code::Invalid(text) => quote_element(text, false, out),
            code => code.write_to(out),
        }
        if self.code == Code::Error {
            out.push_str(" -errorinfo ");
            quote_element(&self.errorinfo, false, out);
            out.push_str(" -errorcode ");
            quote_element(&self.errorcode, false, out);
        }
        out.push(' ');
        quote_element(&self.result, false, out);
    }

    /// Room for the encoded payload when nothing needs escaping (quoting
    /// may add two braces per element).
    fn encoded_len_hint(&self) -> usize {
        let code = match &self.code {
            Code::Invalid(text) => text.len() + 2,
            _ => 12,
        };
        let mut n = "return -code ".len() + code + 1 + self.result.len() + 2;
        if self.code == Code::Error {
            n += " -errorinfo  -errorcode ".len() + self.errorinfo.len() + self.errorcode.len() + 4;
        }
        n
    }

    /// Reads a `reply`/`callback` payload as tcllib's requester does: the
    /// last element is the result; the elements between the first and the
    /// last are switch/value pairs of which only `-code`, `-errorinfo` and
    /// `-errorcode` count (the last of each wins, a missing value is empty);
    /// the first element is not looked at. A single element is the result.
    pub fn decode(payload: &str) -> Result<Outcome, crate::ListError> {
        // The usual payload (`return -code 0 result`) is a simple list.
        let mut simple = [""; 8];
        let mut n = 0;
        if simple_elements(payload, |e| {
            if let Some(slot) = simple.get_mut(n) {
                *slot = e;
            }
            n += 1;
        }) && n <= simple.len()
        {
            let elements = simple[..n].iter().map(|&e| Ok(Cow::Borrowed(e)));
            return Outcome::from_elements(elements);
        }
        Outcome::from_elements(ListIter::new(payload))
    }

    /// [`decode`](Outcome::decode) from the payload's elements.
    fn from_elements<'p>(
        elements: impl Iterator<Item = Result<Cow<'p, str>, crate::ListError>>,
    ) -> Result<Outcome, crate::ListError> {
        // In one pass, without a vector of the elements: an element is
        // known not to be the last once the next one is read.
        let (mut code, mut errorinfo, mut errorcode) =
            (Cow::Borrowed(""), Cow::Borrowed(""), Cow::Borrowed(""));
        let mut set = |switch: &str, value: Cow<'p, str>| match switch {
            "-code" => code = value,
            "-errorinfo" => errorinfo = value,
            "-errorcode" => errorcode = value,
            _ => {}
        };
        let mut last: Option<Cow<'p, str>> = None;
        // A switch between the first element and the last, waiting for its value.
        let mut switch: Option<Cow<'p, str>> = None;
        for (seen, element) in elements.enumerate() {
            let element = element?;
            if let Some(before) = last.replace(element)
                && seen >= 2
            {
                match switch.take() {
                    None => switch = Some(before),
                    Some(s) => set(&s, before),
                }
            }
        }
        if let Some(s) = switch {
            set(&s, Cow::Borrowed(""));
        }
        Ok(Outcome {
            code: Code::parse_exact(&code),
            result: last.unwrap_or_default().into_owned(),
            errorinfo: errorinfo.into_owned(),
            errorcode: errorcode.into_owned(),
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
            Message::Send { serial, script } => write_request(out, "send", &serial.0, script),
            Message::Async { serial, script } => write_request(out, "async", &serial.0, script),
            Message::Command { serial, script } => write_request(out, "command", &serial.0, script),
            Message::Reply { serial, outcome } => write_answer(out, "reply", serial, outcome),
            Message::Callback { serial, outcome } => write_answer(out, "callback", serial, outcome),
            Message::Vers { version } => write_message(out, &["vers", version]),
            Message::Unknown { words } => write_message(out, words),
        }
    }

    /// The wire form of a `reply` or `callback` (`instruction`) carrying
    /// `outcome`: the bytes [`Message::encode`] gives for
    /// [`Message::Reply`] or [`Message::Callback`], without first moving
    /// (or copying) the outcome into a message.
    pub fn encode_answer(instruction: &str, serial: &Serial, outcome: &Outcome) -> Vec<u8> {
        let mut out = String::new();
        write_answer(&mut out, instruction, serial, outcome);
        out.into_bytes()
    }

    /// The wire form of a request (`send`, `async` or `command`:
    /// `instruction`), taking its script: the bytes [`Message::encode`]
    /// gives for it. A big script of one fragment (what a sender's
    /// `send id $script`, or a command formatted as a list, gives) is
    /// framed in its own buffer: the few bytes before it are inserted in
    /// front, instead of the whole script being copied into a new buffer.
    pub fn encode_request(instruction: &str, serial: &Serial, script: Vec<String>) -> Vec<u8> {
        encode_request_text(instruction, &serial.0, script)
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
        Head::read(word)?.into_message()
    }

    /// Builds a message from its first three elements (instruction, serial,
    /// payload; empty when missing); `words` gives all of them, for an
    /// unknown instruction.
    fn from_fields(
        fields: [&str; 3],
        words: impl FnOnce() -> Vec<String>,
    ) -> Result<Message, MessageError> {
        let [instruction, serial_text, payload] = fields;
        let serial = || Serial(serial_text.to_owned());
        let payload_error = |error| MessageError::Payload {
            instruction: instruction.to_owned(),
            serial: serial(),
            error,
        };
        let script = || parse_list(payload).map_err(payload_error);
        let outcome = || Outcome::decode(payload).map_err(payload_error);
        Ok(match instruction {
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
                version: serial_text.to_owned(),
            },
            _ => Message::Unknown { words: words() },
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

/// A message word read as a list, before its payload is: its first three
/// elements (instruction, serial, payload; empty when missing) and, for an
/// unknown instruction, the rest. Borrowed where Tcl takes the element
/// verbatim: the payload is usually braced, so it is parsed in place
/// rather than copied. The three elements that count are kept apart, so
/// that a message needs no vector of its elements; the rest are only
/// checked (the whole word must be a list), unless the instruction is
/// unknown.
#[derive(Default)]
pub(crate) struct Head<'a> {
    fields: [Cow<'a, str>; 3],
    /// How many of `fields` the word has.
    count: usize,
    more: Vec<Cow<'a, str>>,
}

impl<'a> Head<'a> {
    pub(crate) fn read(word: &'a str) -> Result<Head<'a>, crate::ListError> {
        // The usual message (`send 5 {{set a 1}}`) is a simple list.
        let mut head = Head::default();
        if simple_elements(word, |e| head.push(Cow::Borrowed(e))) {
            return Ok(head);
        }
        let mut head = Head::default();
        for e in ListIter::new(word) {
            head.push(e?);
        }
        Ok(head)
    }

    /// Takes the next element: one of the first three, or one past them,
    /// kept only for an unknown instruction.
    #[inline]
    fn push(&mut self, element: Cow<'a, str>) {
        if let Some(slot) = self.fields.get_mut(self.count) {
            *slot = element;
            self.count += 1;
        } else if !Self::known(&self.fields[0]) {
            self.more.push(element);
        }
    }

    /// Whether the instruction is one of comm's (whose elements past the
    /// third are not kept).
    fn known(instruction: &str) -> bool {
        matches!(
            instruction,
            "send" | "async" | "command" | "reply" | "callback" | "vers"
        )
    }

    /// The first element.
    pub(crate) fn instruction(&self) -> &str {
        &self.fields[0]
    }

    /// The second element.
    pub(crate) fn serial(&self) -> &str {
        &self.fields[1]
    }

    /// The third element.
    pub(crate) fn payload(&self) -> &str {
        &self.fields[2]
    }

    pub(crate) fn into_message(self) -> Result<Message, MessageError> {
        let [a, b, c] = &self.fields;
        Message::from_fields([a, b, c], || {
            self.fields
                .iter()
                .take(self.count)
                .chain(&self.more)
                .map(|w| w.to_string())
                .collect()
        })
    }
}

// Encoding `[list [list instr serial payload]]` in one pass.
//
// Every text Tcl's `list` produces is safe to brace: its braces balance
// (counted as TclScanElement counts them, skipping escaped ones) and never
// close more than they opened, it holds no backslash-newline, and it does not
// end in an odd backslash (a braced element is balanced and free of those by
// construction, a bare one holds none of `{}\`'s problems, and backslash
// quoting escapes every brace, backslash and newline). So quoting such a text
// as an element never needs backslashes, and the mode follows from a few
// facts known while producing it: a list of two or more elements holds a
// space and is braced; the empty list is `{}`; a one-element list is braced
// unless its element was written bare, in which case it is written bare
// again. The proptest in this module checks the result against the plain
// nested `format_list`.

/// From this size on, [`Message::encode_request`] frames a one-fragment
/// script in its own buffer (moving it by the few bytes put in front)
/// rather than copying it.
const IN_PLACE_MIN: usize = 64 * 1024;

/// [`Message::encode_request`] with the serial as text (our own serials are
/// formatted on the stack: see [`Digits`]).
pub(crate) fn encode_request_text(instruction: &str, serial: &str, script: Vec<String>) -> Vec<u8> {
    let mut script = script;
    let big = match script.as_mut_slice() {
        [one] if one.len() >= IN_PLACE_MIN => Some(std::mem::take(one)),
        _ => None,
    };
    let Some(one) = big else {
        let mut out = String::new();
        write_request(&mut out, instruction, serial, &script);
        return out.into_bytes();
    };
    // As `write_request` writes a one-fragment payload.
    let (escaped, open, close) = match quote_element_cow(&one, true) {
        Quoted::Bare(_) => (None, "", ""),
        Quoted::Braced(_) => (None, "{{", "}}"),
        Quoted::Escaped(e) => (Some(e), "{", "}"),
    };
    let mut body = escaped.unwrap_or(one);
    let mut prefix = String::with_capacity(instruction.len() + serial.len() + 8);
    prefix.push('{');
    prefix.push_str(instruction);
    prefix.push(' ');
    push_serial(serial, &mut prefix);
    prefix.push(' ');
    prefix.push_str(open);
    body.reserve(prefix.len() + close.len() + 2);
    body.insert_str(0, &prefix);
    body.push_str(close);
    body.push_str("}\n");
    body.into_bytes()
}

/// Appends a serial as a list element: as it is when it is letters and
/// digits (our own serials; tcllib's), which a list writes bare, else
/// quoted.
fn push_serial(serial: &str, out: &mut String) {
    if !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_alphanumeric()) {
        out.push_str(serial);
    } else {
        quote_element(serial, false, out);
    }
}

/// A number's decimal text, formatted on the stack.
pub(crate) struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    pub(crate) fn new(mut n: u64) -> Digits {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Digits { buf, start }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or_default()
    }
}

fn write_request(out: &mut String, instruction: &str, serial: &str, script: &[String]) {
    let payload_len: usize = script.iter().map(|f| f.len() + 3).sum();
    out.reserve(instruction.len() + serial.len() + payload_len + 16);
    out.push('{');
    // The instruction is one of comm's words, written bare.
    out.push_str(instruction);
    out.push(' ');
    push_serial(serial, out);
    out.push(' ');
    match script {
        [] => out.push_str("{}"),
        [one] => match quote_element_cow(one, true) {
            // A one-element list written bare is written bare again.
            Quoted::Bare(text) => out.push_str(text),
            quoted => {
                out.push('{');
                quoted.write_to(out);
                out.push('}');
            }
        },
        _ => {
            out.push('{');
            format_list_into(script, out);
            out.push('}');
        }
    }
    out.push_str("}\n");
}

fn write_answer(out: &mut String, instruction: &str, serial: &Serial, outcome: &Outcome) {
    out.reserve(instruction.len() + serial.0.len() + 8 + outcome.encoded_len_hint());
    out.push('{');
    // The instruction is one of comm's words, written bare.
    out.push_str(instruction);
    out.push(' ');
    push_serial(&serial.0, out);
    // The outcome is a list of at least four elements: braced.
    out.push_str(" {");
    outcome.encode_into(out);
    out.push_str("}}\n");
}

/// `[list [list words...]]` + LF.
fn write_message<S: AsRef<str>>(out: &mut String, words: &[S]) {
    if words.len() >= 2 {
        // Two or more elements: the inner list holds a space, so it is braced.
        let len: usize = words.iter().map(|w| w.as_ref().len() + 3).sum();
        out.reserve(len + 3);
        out.push('{');
        format_list_into(words, out);
        out.push_str("}\n");
        return;
    }
    let inner = format_list(words);
    out.reserve(inner.len() + 3);
    quote_element(&inner, true, out);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::list::parse_list_cow;
    use proptest::prelude::*;

    /// The plain definition: `[list [list instr serial payload]]` + LF, each
    /// level quoted by `format_list`.
    fn reference(m: &Message) -> Vec<u8> {
        let outcome_payload = |o: &Outcome| {
            let code = o.code.to_string();
            if o.code == Code::Error {
                format_list([
                    "return",
                    "-code",
                    &code,
                    "-errorinfo",
                    &o.errorinfo,
                    "-errorcode",
                    &o.errorcode,
                    &o.result,
                ])
            } else {
                format_list(["return", "-code", &code, &o.result])
            }
        };
        let words: Vec<String> = match m {
            Message::Send { serial, script } => {
                vec!["send".into(), serial.0.clone(), format_list(script)]
            }
            Message::Async { serial, script } => {
                vec!["async".into(), serial.0.clone(), format_list(script)]
            }
            Message::Command { serial, script } => {
                vec!["command".into(), serial.0.clone(), format_list(script)]
            }
            Message::Reply { serial, outcome } => {
                vec!["reply".into(), serial.0.clone(), outcome_payload(outcome)]
            }
            Message::Callback { serial, outcome } => {
                vec![
                    "callback".into(),
                    serial.0.clone(),
                    outcome_payload(outcome),
                ]
            }
            Message::Vers { version } => vec!["vers".into(), version.clone()],
            Message::Unknown { words } => words.clone(),
        };
        let mut s = format_list([format_list(&words)]);
        s.push('\n');
        s.into_bytes()
    }

    fn text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{"),
            Just("}"),
            Just("\\"),
            Just("\n"),
            Just(" "),
            Just("\""),
            Just("["),
            Just("]"),
            Just("$"),
            Just(";"),
            Just("#"),
            Just("\t"),
            Just("a"),
            Just("bc"),
            Just("é"),
            Just("\0"),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    fn code() -> impl Strategy<Value = Code> {
        prop_oneof![
            Just(Code::Ok),
            Just(Code::Error),
            Just(Code::Break),
            any::<i32>().prop_map(|n| Code::Other(i64::from(n))),
            text().prop_map(Code::Invalid),
        ]
    }

    fn script() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(text(), 0..4)
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        (code(), text(), text(), text()).prop_map(|(code, result, info, ec)| Outcome {
            code,
            result,
            errorinfo: info,
            errorcode: ec,
        })
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (text(), script()).prop_map(|(s, script)| Message::Send {
                serial: Serial(s),
                script
            }),
            (text(), script()).prop_map(|(s, script)| Message::Async {
                serial: Serial(s),
                script
            }),
            (text(), script()).prop_map(|(s, script)| Message::Command {
                serial: Serial(s),
                script
            }),
            (text(), outcome()).prop_map(|(s, outcome)| Message::Reply {
                serial: Serial(s),
                outcome
            }),
            (text(), outcome()).prop_map(|(s, outcome)| Message::Callback {
                serial: Serial(s),
                outcome
            }),
            text().prop_map(|version| Message::Vers { version }),
            proptest::collection::vec(text(), 0..4).prop_map(|words| Message::Unknown { words }),
        ]
    }

    /// Decoding by the plain definition: the whole word as a vector of
    /// elements, then fields 0, 1 and 2.
    fn decode_reference(word: &str) -> Result<Message, MessageError> {
        let words = parse_list_cow(word)?;
        let field = |i: usize| words.get(i).map(AsRef::as_ref).unwrap_or_default();
        Message::from_fields([field(0), field(1), field(2)], || {
            words.iter().map(|w| w.to_string()).collect()
        })
    }

    /// A payload read by the plain definition: all its elements, the last
    /// the result, the pairs between the first and the last the switches.
    fn outcome_reference(payload: &str) -> Result<Outcome, crate::ListError> {
        let mut words = parse_list_cow(payload)?;
        let result = words.pop().unwrap_or_default().into_owned();
        let (mut code, mut errorinfo, mut errorcode) = (Cow::Borrowed(""), "".into(), "".into());
        for pair in words.get(1..).unwrap_or_default().chunks(2) {
            let value = pair.get(1).cloned().unwrap_or_default();
            match pair[0].as_ref() {
                "-code" => code = value,
                "-errorinfo" => errorinfo = value,
                "-errorcode" => errorcode = value,
                _ => {}
            }
        }
        Ok(Outcome {
            code: Code::parse_exact(&code),
            result,
            errorinfo: errorinfo.into_owned(),
            errorcode: errorcode.into_owned(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        /// Any payload, list or not, reads as by the plain definition.
        #[test]
        fn outcome_decode_matches_the_plain_definition(
            words in proptest::collection::vec(prop_oneof![
                Just("return".to_owned()), Just("-code".to_owned()),
                Just("-errorinfo".to_owned()), Just("-errorcode".to_owned()),
                Just("0".to_owned()), Just("3".to_owned()), Just("01".to_owned()),
                Just("{a b}".to_owned()), text(),
            ], 0..9),
        ) {
            let payload = words.join(" ");
            prop_assert_eq!(Outcome::decode(&payload), outcome_reference(&payload));
        }

        /// A number's stack-formatted text is its decimal text.
        #[test]
        fn digits_are_decimal(n in any::<u64>()) {
            for m in [n, 0, 9, 10, u64::MAX] {
                let digits = Digits::new(m);
                prop_assert_eq!(digits.as_str(), m.to_string());
            }
        }

        /// Every code reads back as it was written.
        #[test]
        fn codes_read_back(code in code()) {
            let mut text = String::new();
            code.write_to(&mut text);
            prop_assert_eq!(&text, &code.to_string());
            let back = Code::parse_exact(&text);
            match &code {
                Code::Invalid(t) if Code::parse_exact(t) != code => {}
                _ => prop_assert_eq!(back, code),
            }
        }

        /// Any word, list or not, with any number of elements, decodes (or
        /// fails) exactly as by the plain definition.
        #[test]
        fn decode_matches_the_plain_definition(
            instruction in prop_oneof![
                Just("send"), Just("async"), Just("command"), Just("reply"),
                Just("callback"), Just("vers"), Just("other"), Just("{send"), Just(""),
            ],
            rest in proptest::collection::vec(prop_oneof![text(), Just("{a b}".to_owned())], 0..6),
        ) {
            let word = format!("{instruction} {}", rest.join(" "));
            prop_assert_eq!(Message::decode(&word), decode_reference(&word));
        }

        #[test]
        fn requests_framed_in_place_match_encode(
            unit in prop::sample::select(vec!["x", "a b", "}", "{", "#", "\\", "é", "\n"]),
            first in prop::sample::select(vec!["", "#", "{", "}", "x y"]),
            serial in "[0-9a-z {}]{0,3}",
            kind in 0..3usize,
        ) {
            // Around the size from which the script is framed in place.
            for len in [IN_PLACE_MIN - 1, IN_PLACE_MIN, IN_PLACE_MIN + 70] {
                let mut one = first.to_string();
                while one.len() < len {
                    one.push_str(unit);
                }
                let serial = Serial(serial.clone());
                let script = vec![one];
                let (instruction, m) = match kind {
                    0 => ("send", Message::Send { serial: serial.clone(), script: script.clone() }),
                    1 => ("async", Message::Async { serial: serial.clone(), script: script.clone() }),
                    _ => ("command", Message::Command { serial: serial.clone(), script: script.clone() }),
                };
                prop_assert_eq!(Message::encode_request(instruction, &serial, script), m.encode());
            }
        }

        #[test]
        fn fast_encode_matches_nested_format_list(m in message()) {
            prop_assert_eq!(
                String::from_utf8(m.encode()).unwrap(),
                String::from_utf8(reference(&m)).unwrap()
            );
        }

        #[test]
        fn decode_reads_back_what_encode_wrote(m in message()) {
            let wire = String::from_utf8(m.encode()).unwrap();
            let word = parse_list(wire.trim_end_matches('\n')).unwrap();
            prop_assert_eq!(word.len(), 1);
            let back = Message::decode(&word[0]).unwrap();
            let fields = parse_list(&word[0]).unwrap();
            let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
            match &back {
                Message::Send { serial, script }
                | Message::Async { serial, script }
                | Message::Command { serial, script } => {
                    prop_assert_eq!(&serial.0, &field(1));
                    prop_assert_eq!(script, &parse_list(&field(2)).unwrap());
                }
                Message::Reply { serial, outcome } | Message::Callback { serial, outcome } => {
                    prop_assert_eq!(&serial.0, &field(1));
                    prop_assert_eq!(&outcome.result, &parse_list(&field(2)).unwrap().pop().unwrap());
                }
                Message::Vers { version } => prop_assert_eq!(version, &field(1)),
                Message::Unknown { words } => prop_assert_eq!(words, &fields),
            }
        }
    }
}
