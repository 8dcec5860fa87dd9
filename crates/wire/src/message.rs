//! comm messages: `[list [list instr serial payload]]` + LF.

use thiserror::Error;

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
}

impl Message {
    /// The bytes of this message on the wire: `[list [list instr serial payload]]` + LF.
    pub fn encode(&self) -> Vec<u8> {
        todo!("message encode")
    }

    /// Decodes one framed word (as returned by [`crate::Framer::next_word`]).
    pub fn decode(word: &str) -> Result<Message, MessageError> {
        let _ = word;
        todo!("message decode")
    }
}
