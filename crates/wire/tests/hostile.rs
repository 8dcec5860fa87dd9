//! The hostile inputs of spec §11 items 1–5: where tcllib spins, wedges,
//! leaks or grows without bound, the framer and the handshake reader give an
//! error, stay bounded, and never panic. Every loop here is bounded.

#![allow(clippy::unwrap_used)]

use tclcomm_wire::framer::Eof;
use tclcomm_wire::handshake::{self, LineReader};
use tclcomm_wire::{FrameError, Framer, HandshakeError, Message};

/// Feeds `data` and takes out words until the framer needs more or fails.
fn drain(framer: &mut Framer, data: &[u8]) -> Result<Vec<String>, FrameError> {
    framer.feed(data);
    let mut words = Vec::new();
    for _ in 0..10_000 {
        match framer.next_word()? {
            Some(w) => words.push(w),
            None => return Ok(words),
        }
    }
    panic!("framer produced more than 10000 words");
}

/// Checks that a failed framer stays failed and holds nothing.
fn assert_stays_failed(framer: &mut Framer, err: &FrameError) {
    for _ in 0..3 {
        framer.feed(b"{send 9 {{set a 9}}}\n");
        assert_eq!(framer.next_word().as_ref(), Err(err));
        assert_eq!(framer.buffered(), 0);
        assert_eq!(framer.error(), Some(err));
    }
}

#[test]
fn unbalanced_quote_word_is_an_error_not_a_spin() {
    // Spec: `{"}` makes tcllib spin at 100% CPU forever.
    let mut f = Framer::default();
    let got = drain(
        &mut f,
        b"{send 1 {{set a 1}}}\n{\"}\n{send 2 {{set a 2}}}\n",
    );
    assert_eq!(got, Err(FrameError::Incomplete));
    assert_stays_failed(&mut f, &FrameError::Incomplete);

    // The message before the bad one is delivered first.
    let mut f = Framer::default();
    f.feed(b"{send 1 {{set a 1}}}\n{\"}\n");
    assert_eq!(
        f.next_word().unwrap().as_deref(),
        Some("send 1 {{set a 1}}")
    );
    assert_eq!(f.next_word(), Err(FrameError::Incomplete));
}

#[test]
fn bare_quote_word_is_an_error_not_a_spin() {
    // `"abc` followed by whitespace: a bare word that is not complete.
    let mut f = Framer::default();
    assert_eq!(drain(&mut f, b"\"abc"), Ok(vec![]));
    assert_eq!(drain(&mut f, b" def\n"), Err(FrameError::Incomplete));
    assert_stays_failed(&mut f, &FrameError::Incomplete);

    // An open bracket is incomplete too.
    let mut f = Framer::default();
    assert_eq!(
        drain(&mut f, b"{send 1 [set a}\n"),
        Err(FrameError::Incomplete)
    );
}

#[test]
fn empty_word_is_an_error_not_a_wedge() {
    // Spec: `{}` wedges the connection forever while its buffer grows.
    let mut f = Framer::default();
    let got = drain(&mut f, b"{}\n{send 1 {{set a 22}}}\n");
    assert_eq!(got, Err(FrameError::EmptyWord));
    assert_stays_failed(&mut f, &FrameError::EmptyWord);
    for _ in 0..1000 {
        f.feed(&[b'x'; 1024]);
    }
    assert_eq!(f.buffered(), 0);
}

#[test]
fn invalid_utf8_is_decoded_as_tcl_does() {
    // Tcl 8.6 takes a byte that is not UTF-8 as the character with its
    // value, and the stream goes on.
    let mut f = Framer::default();
    assert_eq!(
        drain(&mut f, b"{send 1 \xff}\n{send 2 x}\n"),
        Ok(vec!["send 1 \u{ff}".to_owned(), "send 2 x".to_owned()])
    );
    let mut f = Framer::default();
    assert_eq!(drain(&mut f, b"ab\xc3 "), Ok(vec!["ab\u{c3}".to_owned()]));
    // A stray A0 is U+00A0, whitespace to tcllib's `\s`: it ends a bare word.
    let mut f = Framer::default();
    assert_eq!(
        drain(&mut f, b"ab\xa0cd\n"),
        Ok(vec!["ab".to_owned(), "cd".to_owned()])
    );
    // UTF-8 split across reads is still one character...
    let mut f = Framer::default();
    assert_eq!(drain(&mut f, b"{a\xc3"), Ok(vec![]));
    assert_eq!(drain(&mut f, b"\xa9}"), Ok(vec!["a\u{e9}".to_owned()]));
    // ...also after an invalid byte, and so is a CESU-8 surrogate pair.
    let mut f = Framer::default();
    assert_eq!(drain(&mut f, b"{\xff \xed\xa0\xbd\xed"), Ok(vec![]));
    assert_eq!(drain(&mut f, b"\xb8"), Ok(vec![]));
    assert_eq!(
        drain(&mut f, b"\x80 \xf0\x9f}\n"),
        Ok(vec!["\u{ff} \u{1f600} \u{f0}\u{9f}".to_owned()])
    );
    assert_eq!(f.buffered(), 0);
}

#[test]
fn endless_brace_word_stops_at_the_maximum() {
    const MAX: usize = 64 * 1024;
    for chunk in [1usize, 100, 4096, 100_000] {
        let mut f = Framer::new(MAX);
        let mut data = vec![b'{'];
        data.resize(chunk, b'a');
        let mut fed = 0;
        let err = loop {
            assert!(fed <= MAX + 2 * chunk + 1, "no error after {fed} bytes");
            match drain(&mut f, &data) {
                Ok(words) => assert!(words.is_empty()),
                Err(e) => break e,
            }
            fed += data.len();
            assert!(f.buffered() <= MAX + chunk + 1);
            data.fill(b'a');
        };
        assert_eq!(err, FrameError::TooLarge { max: MAX });
        assert_eq!(f.buffered(), 0);
        assert_stays_failed(&mut f, &err);
    }
}

#[test]
fn endless_nested_braces_and_bare_words_stop_at_the_maximum() {
    const MAX: usize = 10_000;
    for filler in [b'{', b'x'] {
        let mut f = Framer::new(MAX);
        let mut result = Ok(vec![]);
        for _ in 0..MAX {
            result = drain(&mut f, &[filler; 7]);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FrameError::TooLarge { max: MAX }));
    }
}

#[test]
fn maximum_is_inclusive() {
    let word = "a".repeat(100);
    let mut f = Framer::new(100);
    assert_eq!(
        drain(&mut f, format!("{{{word}}}").as_bytes()),
        Ok(vec![word.clone()])
    );
    assert_eq!(
        drain(&mut f, format!("{word} ").as_bytes()),
        Ok(vec![word.clone()])
    );
    let mut f = Framer::new(99);
    assert_eq!(
        drain(&mut f, format!("{{{word}}}").as_bytes()),
        Err(FrameError::TooLarge { max: 99 })
    );
}

#[test]
fn endless_whitespace_is_not_kept() {
    let mut f = Framer::new(1024);
    let spaces = [b' '; 4096];
    for _ in 0..2560 {
        assert_eq!(drain(&mut f, &spaces), Ok(vec![]));
        assert_eq!(f.buffered(), 0);
    }
    // A multi-byte space cut off at the end is kept until it completes.
    assert_eq!(drain(&mut f, b"\r\n\xe3\x80"), Ok(vec![]));
    assert_eq!(f.buffered(), 2);
    assert_eq!(drain(&mut f, b"\x80x "), Ok(vec!["x".to_owned()]));
    assert_eq!(f.eof(), Eof::Clean);
}

#[test]
fn endless_handshake_line_is_too_long() {
    let mut r = LineReader::new(4096);
    let mut fed = 0;
    let err = loop {
        assert!(fed <= 4097, "no error after {fed} bytes");
        match r.feed(b"a") {
            Ok(None) => fed += 1,
            Ok(Some(line)) => panic!("a line without an ending: {line:?}"),
            Err(e) => break e,
        }
        assert!(r.buffered() <= 4096);
    };
    assert_eq!(err, HandshakeError::TooLong { max: 4096 });
    assert_eq!(r.buffered(), 0);
    // Afterwards nothing is kept.
    assert_eq!(r.feed(&[b'a'; 10_000]), Ok(None));
    assert_eq!(r.buffered(), 0);

    // In one big read the bound holds too, and a line of exactly the
    // maximum is accepted.
    let mut r = LineReader::new(10);
    assert_eq!(
        r.feed(&[b'a'; 1 << 20]),
        Err(HandshakeError::TooLong { max: 10 })
    );
    let mut r = LineReader::new(10);
    let first = r.feed(b"{3 2} 1234\nrest").unwrap().unwrap();
    assert_eq!(
        (first.line.as_str(), first.rest.as_slice()),
        ("{3 2} 1234", &b"rest"[..])
    );
}

#[test]
fn malformed_handshake_is_a_list_error() {
    let mut r = LineReader::default();
    let first = r
        .feed(b"{3 2 1240\n{send 1 {{set a 1}}}\n")
        .unwrap()
        .unwrap();
    let err = handshake::parse_offer(&first.line, "127.0.0.1", 40000).unwrap_err();
    assert_eq!(err.to_string(), "unmatched open brace in list");
    // An offered-versions element that is itself not a list.
    let err = handshake::parse_offer("{{a}x} 5", "127.0.0.1", 40000).unwrap_err();
    assert!(matches!(err, HandshakeError::List(_)));
}

#[test]
fn handshake_eof() {
    // EOF before anything: just close.
    assert_eq!(LineReader::default().eof(), None);
    // EOF with a partial line: the partial line is the handshake (Tcl's gets).
    let mut r = LineReader::default();
    assert_eq!(r.feed(b"{3 2} 77"), Ok(None));
    assert_eq!(r.eof().as_deref(), Some("{3 2} 77"));
}

#[test]
fn data_followed_by_eof_yields_every_complete_message() {
    // tcllib drops the data read together with the EOF (spec §11 item 5).
    let mut f = Framer::default();
    let words = drain(
        &mut f,
        b"{reply 1 {return -code 0 1}}\n{send 2 x}{send 3 y}",
    )
    .unwrap();
    assert_eq!(
        words,
        ["reply 1 {return -code 0 1}", "send 2 x", "send 3 y"]
    );
    assert_eq!(f.eof(), Eof::Clean);
    assert!(matches!(
        Message::decode(&words[0]),
        Ok(Message::Reply { .. })
    ));

    let mut f = Framer::default();
    let words = drain(&mut f, b"{send 1 x}\n{send 2 {{unfinished").unwrap();
    assert_eq!(words, ["send 1 x"]);
    assert_eq!(f.eof(), Eof::Truncated { bytes: 20 });

    // A bare word needs whitespace after it, even at the end of the stream.
    let mut f = Framer::default();
    assert_eq!(
        drain(&mut f, b"{send 1 x} foo"),
        Ok(vec!["send 1 x".to_owned()])
    );
    assert_eq!(f.eof(), Eof::Truncated { bytes: 3 });
}

#[test]
fn raw_nul_and_escaped_braces() {
    let mut f = Framer::default();
    let words = drain(&mut f, b"{send 1 {{puts \\\\}}}\n{a\0\\}b}\n{x\\{}\n").unwrap();
    assert_eq!(words, ["send 1 {{puts \\\\}}", "a\0\\}b", "x\\{"]);
}
