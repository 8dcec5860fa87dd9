//! The incremental receiver: bytes in, complete message words out.

use thiserror::Error;

/// The default bound on one message (and so on a connection's buffer): 256 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// A protocol error that ends the connection it happened on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The message word is empty (`{}`); tcllib wedges the connection on it.
    #[error("empty message")]
    EmptyWord,
    /// The message word is not a complete Tcl script; tcllib spins on it.
    #[error("message is not a complete script")]
    Incomplete,
    /// The message is not valid UTF-8.
    #[error("message is not valid UTF-8")]
    InvalidUtf8,
    /// The message is larger than the configured maximum.
    #[error("message exceeds the maximum size of {max} bytes")]
    TooLarge {
        /// The configured maximum.
        max: usize,
    },
}

/// Incremental framer. Feed bytes in any chunking; take out words in order.
/// Total work is linear in the bytes fed.
#[derive(Debug)]
pub struct Framer {
    max: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Framer {
    /// A framer that refuses messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Framer { max: max_message }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        let _ = bytes;
        todo!("framer")
    }

    /// The next complete message word, `Ok(None)` if more bytes are needed.
    /// After an error the framer stays failed.
    pub fn next_word(&mut self) -> Result<Option<String>, FrameError> {
        let _ = self.max;
        todo!("framer")
    }
}
