//! The connection handshake: the client's `{3 2} <port>` offer and the
//! server's `{vers 3}` answer.

use thiserror::Error;

/// A parsed client offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The chosen version (3 or 2).
    pub version: u8,
    /// The client's id as it sent it (verbatim; may be `0` or empty).
    pub remote_id: String,
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
