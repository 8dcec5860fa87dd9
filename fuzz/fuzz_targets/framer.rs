//! Arbitrary bytes in arbitrary reads: the framer never panics, never holds
//! more than its (small) maximum plus one read, and frames the same way
//! whatever the chunking. The handshake reader gets the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tclcomm_wire::framer::Eof;
use tclcomm_wire::handshake::{self, LineReader};
use tclcomm_wire::{FrameError, Framer, Message};

const MAX: usize = 4096;

/// Everything a framer gave for one chunking.
#[derive(Debug, PartialEq)]
struct Outcome {
    words: Vec<String>,
    error: Option<FrameError>,
    eof: Option<Eof>,
}

fn frame<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut framer = Framer::new(MAX);
    let mut words = Vec::new();
    for chunk in chunks {
        framer.feed(chunk);
        assert!(framer.buffered() <= MAX + 1 + chunk.len());
        // Each word takes at least one byte, so this bound is never hit.
        for _ in 0..=chunk.len() {
            match framer.next_word() {
                Ok(Some(word)) => {
                    let _ = Message::decode(&word);
                    words.push(word);
                }
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        words,
                        error: Some(error),
                        eof: None,
                    };
                }
            }
        }
        assert!(framer.buffered() <= MAX + 2);
    }
    Outcome {
        words,
        error: None,
        eof: Some(framer.eof()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    // The chunk sizes follow from the first byte: 1..=16, varying.
    let mut sizes = std::iter::successors(Some(seed as usize), |s| Some(s * 5 + 3));
    let mut rest = data;
    let chunks = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        let n = (sizes.next()? % 16 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    });
    let chunked = frame(chunks);
    let whole = frame(std::iter::once(data));
    // The same words either way; a bad word may be reported differently
    // (an invalid byte is seen as it arrives, the size when it is exceeded).
    assert_eq!(chunked.words, whole.words);
    assert_eq!(chunked.error.is_some(), whole.error.is_some());
    if chunked.error.is_none() {
        assert_eq!(chunked.eof, whole.eof);
    }

    let mut reader = LineReader::new(64);
    for chunk in data.chunks(seed as usize % 7 + 1) {
        match reader.feed(chunk) {
            Ok(Some(first)) => {
                let _ = handshake::parse_offer(&first.line, "127.0.0.1", 1);
                break;
            }
            Ok(None) => assert!(reader.buffered() <= 64),
            Err(_) => break,
        }
    }
});
