//! The connection handshake: the client's `{3 2} <port>` offer and the
//! server's `{vers 3}` answer.
//!
//! Connecting side: write [`client_offer`] and, without waiting for an
//! answer, go on with the messages; the peer's version is
//! [`CLIENT_DEFAULT_VERSION`] until a `vers` message says otherwise.
//!
//! Accepting side: feed bytes to a [`LineReader`] until it gives the first
//! line (and the bytes after it, which belong to the
//! [`Framer`](crate::Framer)); [`parse_offer`] it; write
//! [`Offer::answer`].

use thiserror::Error;

/// The versions a client offers, in order of preference, as the list text
/// tcllib sends.
pub const OFFERED_VERSIONS: &str = "3 2";

/// The version a client assumes until the server's `vers` message arrives.
pub const CLIENT_DEFAULT_VERSION: &str = "2";

/// The server's answer to a version 3 offer, byte for byte as tcllib writes
/// it (CRLF, since tcllib writes it before switching the socket to LF).
pub const VERS3_ANSWER: &[u8] = b"{vers 3}\r\n";

/// The default bound on the handshake line (without its line ending).
pub const DEFAULT_MAX_LINE: usize = 4096;

/// A parsed client offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The chosen version (3 or 2).
    pub version: u8,
    /// The client's id as it sent it (verbatim; may be `0` or empty).
    pub remote_id: String,
}

impl Offer {
    /// The bytes the accepting side writes back: [`VERS3_ANSWER`] for
    /// version 3, nothing for version 2.
    pub fn answer(&self) -> &'static [u8] {
        if self.version == 3 { VERS3_ANSWER } else { b"" }
    }

    /// The id under which the accepting side knows this peer: the offered id
    /// as is when the peer's address equals the local address of the
    /// accepted socket, else the list `{<id> <peer_addr>}` (tcllib's rule).
    pub fn peer_id(&self, local_addr: &str, peer_addr: &str) -> String {
        if local_addr == peer_addr {
            self.remote_id.clone()
        } else {
            crate::list::format_list([self.remote_id.as_str(), peer_addr])
        }
    }
}

/// The first line of a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// None of the offered versions is 3 or 2. The text is tcllib's exactly.
    #[error("Unknown offered protocols \"{line}\" from {addr}/{port}")]
    UnknownProtocols {
        /// The whole first line.
        line: String,
        /// The peer address.
        addr: String,
        /// The peer port.
        port: u16,
    },
    /// The line is not a Tcl list.
    #[error("{0}")]
    List(#[from] crate::ListError),
    /// The line is longer than the allowed maximum.
    #[error("handshake line exceeds {max} bytes")]
    TooLong {
        /// The maximum.
        max: usize,
    },
}

/// The client's first line: `[list {3 2} $own_id]` + LF, e.g. `{3 2} 45002\n`.
/// `own_id` is the channel's port, `0` for a channel that does not listen.
pub fn client_offer(own_id: &str) -> Vec<u8> {
    let mut line = crate::list::format_list([OFFERED_VERSIONS, own_id]);
    line.push('\n');
    line.into_bytes()
}

/// Parses the first line of an accepted connection as tcllib does: the first
/// list element is the list of offered versions, the second the client's id
/// (empty if missing); further elements are ignored. The first offered
/// version that is exactly `3` or `2` wins. `addr` and `port` are the peer's,
/// for the error text.
pub fn parse_offer(line: &str, addr: &str, port: u16) -> Result<Offer, HandshakeError> {
    let mut words = crate::list::parse_list(line)?.into_iter();
    let offered = words.next().unwrap_or_default();
    let remote_id = words.next().unwrap_or_default();
    let version = crate::list::parse_list(&offered)?
        .iter()
        .find_map(|v| match v.as_str() {
            "3" => Some(3),
            "2" => Some(2),
            _ => None,
        });
    match version {
        Some(version) => Ok(Offer { version, remote_id }),
        None => Err(HandshakeError::UnknownProtocols {
            line: line.to_owned(),
            addr: addr.to_owned(),
            port,
        }),
    }
}

/// The first line of an accepted connection and the bytes received after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstLine {
    /// The line without its ending (LF, CRLF or CR). Decoded as UTF-8, with
    /// invalid bytes replaced (tcllib reads it in the system encoding).
    pub line: String,
    /// The bytes after the line ending: the start of the message stream, to
    /// be fed to the [`Framer`](crate::Framer).
    pub rest: Vec<u8>,
}

/// Reads the first line of an accepted connection, ending at LF, CRLF or a
/// lone CR (Tcl's `-translation auto`), with a bound on its length.
#[derive(Debug)]
pub struct LineReader {
    max: usize,
    buf: Vec<u8>,
    done: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader::new(DEFAULT_MAX_LINE)
    }
}

impl LineReader {
    /// A reader that refuses lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        LineReader {
            max: max_line,
            buf: Vec::new(),
            done: false,
        }
    }

    /// How many bytes are held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds received bytes. Returns the line once it is complete (once
    /// only; later calls return `Ok(None)` and keep nothing), or
    /// [`HandshakeError::TooLong`] as soon as more than the maximum arrived
    /// without a line ending.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<FirstLine>, HandshakeError> {
        if self.done {
            return Ok(None);
        }
        // Look only at what is new, and never at more than the bound allows.
        let room = (self.max + 1).saturating_sub(self.buf.len());
        let look = &bytes[..bytes.len().min(room)];
        match look.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                self.buf.extend_from_slice(&look[..i]);
                let skip = if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                let line = self.finish();
                Ok(Some(FirstLine {
                    line,
                    rest: bytes[i + skip..].to_vec(),
                }))
            }
            None => {
                self.buf.extend_from_slice(look);
                if self.buf.len() > self.max {
                    self.done = true;
                    self.buf = Vec::new();
                    return Err(HandshakeError::TooLong { max: self.max });
                }
                Ok(None)
            }
        }
    }

    /// The stream ended: a partial line is still the handshake line (as
    /// Tcl's `gets` returns it); `None` if nothing was received, in which
    /// case the socket is just closed.
    pub fn eof(&mut self) -> Option<String> {
        if self.done || self.buf.is_empty() {
            self.done = true;
            return None;
        }
        Some(self.finish())
    }

    fn finish(&mut self) -> String {
        self.done = true;
        let buf = std::mem::take(&mut self.buf);
        match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}
