//! Every transcript of spec §2.9 (the captured sessions, the anonymous and
//! the listening client, and the raw handshake experiments) decodes to the
//! expected messages, re-encodes to the same bytes, and frames the same way
//! whatever the chunking.

#![allow(clippy::unwrap_used)]

use tclcomm_wire::framer::Eof;
use tclcomm_wire::handshake::{self, LineReader, VERS3_ANSWER};
use tclcomm_wire::{Code, Framer, HandshakeError, Message, Offer, Outcome, Serial};

/// Guard for every receive loop: no stream here has more words.
const MAX_WORDS: usize = 1000;

/// The 200000-character reply of transcript 14 (200029 bytes).
fn big_reply() -> Vec<u8> {
    let reply = format!("{{reply 14 {{return -code 0 {}}}}}\n", "x".repeat(200_000));
    assert_eq!(reply.len(), 200_029);
    reply.into_bytes()
}

/// The captured reads of one direction, with transcript 14's reply filled in.
fn reads(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    chunks
        .iter()
        .map(|c| {
            if c.is_empty() {
                big_reply()
            } else {
                c.to_vec()
            }
        })
        .collect()
}

/// What one side took out of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    /// The handshake line (accepting side only).
    line: Option<String>,
    words: Vec<String>,
    eof: Eof,
}

/// Receives `chunks` as the accepting side (`accepting`: first a handshake
/// line) or as the connecting side (messages only).
fn receive<'a>(accepting: bool, chunks: impl IntoIterator<Item = &'a [u8]>) -> Received {
    let mut reader = accepting.then(LineReader::default);
    let mut line = None;
    let mut framer = Framer::default();
    let mut words = Vec::new();
    for chunk in chunks {
        let rest;
        let mut data = chunk;
        if let Some(r) = reader.as_mut() {
            match r.feed(chunk).unwrap() {
                Some(first) => {
                    line = Some(first.line);
                    rest = first.rest;
                    data = &rest;
                    reader = None;
                }
                None => continue,
            }
        }
        framer.feed(data);
        while let Some(word) = framer.next_word().unwrap() {
            words.push(word);
            assert!(words.len() <= MAX_WORDS);
        }
    }
    if let Some(mut r) = reader {
        line = r.eof();
    }
    Received {
        line,
        words,
        eof: framer.eof(),
    }
}

/// A small deterministic generator for random chunkings.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Checks that every chunking of `data` gives `expected`: each split point
/// (for streams up to 8 KiB, else every 997th), byte at a time, and random
/// chunkings of small and large pieces.
fn check_chunkings(accepting: bool, data: &[u8], expected: &Received) {
    let step = if data.len() <= 8192 { 1 } else { 997 };
    for k in (0..=data.len()).step_by(step) {
        let got = receive(accepting, [&data[..k], &data[k..]]);
        assert_eq!(&got, expected, "split at {k}");
    }
    assert_eq!(
        &receive(accepting, data.chunks(1)),
        expected,
        "byte at a time"
    );
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ data.len() as u64);
    for round in 0..40 {
        let max = if round % 2 == 0 { 7 } else { 5000 };
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let n = 1 + rng.below(max);
            let end = (at + n).min(data.len());
            pieces.push(&data[at..end]);
            at = end;
        }
        assert_eq!(
            &receive(accepting, pieces),
            expected,
            "random round {round}"
        );
    }
}

fn send(serial: u64, script: &[&str]) -> Message {
    Message::Send {
        serial: Serial::from(serial),
        script: script.iter().map(|s| s.to_string()).collect(),
    }
}

fn reply(serial: u64, outcome: Outcome) -> Message {
    Message::Reply {
        serial: Serial::from(serial),
        outcome,
    }
}

fn decode_all(words: &[String]) -> Vec<Message> {
    words.iter().map(|w| Message::decode(w).unwrap()).collect()
}

/// Frames, decodes and re-encodes both directions of a transcript and checks
/// every chunking. Returns the offer and the messages of each direction.
fn run(name: &str, c2s: &[&[u8]], s2c: &[&[u8]]) -> (Option<Offer>, Vec<Message>, Vec<Message>) {
    let c2s = reads(c2s);
    let s2c = reads(s2c);
    let c2s_all = c2s.concat();
    let s2c_all = s2c.concat();

    // The accepting side sees a handshake line first when the client's
    // stream starts with the connection.
    let accepting = c2s_all.starts_with(b"{3 2}");
    let from_client = receive(accepting, c2s.iter().map(Vec::as_slice));
    let from_server = receive(false, s2c.iter().map(Vec::as_slice));
    assert_eq!(from_client.eof, Eof::Clean, "{name}");
    assert_eq!(from_server.eof, Eof::Clean, "{name}");
    check_chunkings(accepting, &c2s_all, &from_client);
    check_chunkings(false, &s2c_all, &from_server);

    let offer = from_client
        .line
        .as_ref()
        .map(|l| handshake::parse_offer(l, "127.0.0.1", 40000).unwrap());
    let to_server = decode_all(&from_client.words);
    let to_client = decode_all(&from_server.words);

    // Re-encode byte for byte.
    let mut again = Vec::new();
    if let Some(offer) = &offer {
        assert_eq!(offer.version, 3, "{name}");
        again.extend(handshake::client_offer(&offer.remote_id));
    }
    for m in &to_server {
        again.extend(m.encode());
    }
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&c2s_all),
        "{name}"
    );
    let mut again = Vec::new();
    for m in &to_client {
        match m {
            Message::Vers { version } if version == "3" => again.extend(VERS3_ANSWER),
            m => again.extend(m.encode()),
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&s2c_all),
        "{name}"
    );
    (offer, to_server, to_client)
}

fn find(name: &str) -> (&'static [&'static [u8]], &'static [&'static [u8]]) {
    let t = TRANSCRIPTS.iter().find(|t| t.0 == name).unwrap();
    (t.1, t.2)
}

#[test]
fn every_transcript_round_trips_in_every_chunking() {
    assert_eq!(TRANSCRIPTS.len(), 21);
    for (name, c2s, s2c) in TRANSCRIPTS {
        run(name, c2s, s2c);
    }
}

fn vers3() -> Message {
    Message::Vers {
        version: "3".into(),
    }
}

#[test]
fn sync_send_ok() {
    let (c2s, s2c) = find("main 1");
    let (offer, to_server, to_client) = run("main 1", c2s, s2c);
    assert_eq!(
        offer,
        Some(Offer {
            version: 3,
            remote_id: "45002".into()
        })
    );
    assert_eq!(to_server, vec![send(1, &["set a 1"])]);
    assert_eq!(to_client, vec![vers3(), reply(1, Outcome::ok("1"))]);
}

#[test]
fn multi_fragment_send_and_wrongargs_error() {
    let (c2s, s2c) = find("main 2");
    let (_, to_server, to_client) = run("main 2", c2s, s2c);
    assert_eq!(to_server, vec![send(2, &["set", "b", "hello world"])]);
    let msg = "wrong # args: should be \"set varName ?newValue?\"";
    let info = format!(
        "{msg}\n    while executing\n\"set b hello world\"\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 set b {{hello world}}\"\n    invoked from within\n\"catch $thecmd ret\""
    );
    assert_eq!(
        to_client[1],
        reply(2, Outcome::error(msg, info, "TCL WRONGARGS"))
    );
}

#[test]
fn error_replies_and_callbacks() {
    let (c2s, s2c) = find("main 3");
    let (_, to_server, to_client) = run("main 3", c2s, s2c);
    assert_eq!(
        to_server,
        vec![send(3, &["error boom {my info} {MY CODE}"])]
    );
    let Message::Reply { outcome, .. } = &to_client[1] else {
        panic!("not a reply: {:?}", to_client[1]);
    };
    assert_eq!(
        (outcome.code.clone(), outcome.result.as_str()),
        (Code::Error, "boom")
    );
    assert_eq!(outcome.errorcode, "MY CODE");
    assert!(
        outcome
            .errorinfo
            .starts_with("my info\n    (\"uplevel\" body line 1)")
    );

    let (c2s, s2c) = find("main 7");
    let (_, to_server, to_client) = run("main 7", c2s, s2c);
    assert_eq!(
        to_server,
        vec![Message::Command {
            serial: Serial::from(7),
            script: vec!["error oops".into()]
        }]
    );
    let Message::Callback { serial, outcome } = &to_client[1] else {
        panic!("not a callback: {:?}", to_client[1]);
    };
    assert_eq!(serial, &Serial::from(7));
    assert_eq!(
        (&outcome.code, outcome.result.as_str()),
        (&Code::Error, "oops")
    );
    assert_eq!(outcome.errorcode, "NONE");

    let (c2s, s2c) = find("main 19");
    let (_, _, to_client) = run("main 19", c2s, s2c);
    assert_eq!(
        to_client,
        vec![reply(
            22,
            Outcome::error(
                "futerr",
                "no complete word found/2\n    while executing\n\"Word0 data\"",
                "NONE"
            )
        )]
    );
}

#[test]
fn async_and_command_ok() {
    let (c2s, s2c) = find("main 5");
    let (_, to_server, to_client) = run("main 5", c2s, s2c);
    assert_eq!(
        to_server,
        vec![Message::Async {
            serial: Serial::from(5),
            script: vec!["set c 3".into()]
        }]
    );
    assert_eq!(to_client, vec![vers3()]);
    let (c2s, s2c) = find("main 6");
    let (_, _, to_client) = run("main 6", c2s, s2c);
    assert_eq!(
        to_client[1],
        Message::Callback {
            serial: Serial::from(6),
            outcome: Outcome::ok("4")
        }
    );
}

#[test]
fn completion_codes() {
    for (name, serial, script, code, result) in [
        ("main 8", 8, "break", Code::Break, ""),
        ("main 9", 9, "continue", Code::Continue, ""),
        (
            "main 10",
            10,
            "return -code return xyz",
            Code::Return,
            "xyz",
        ),
        ("main 11", 11, "return -code 5 five", Code::Return, "five"),
    ] {
        let (c2s, s2c) = find(name);
        let (_, to_server, to_client) = run(name, c2s, s2c);
        assert_eq!(to_server, vec![send(serial, &[script])], "{name}");
        assert_eq!(
            to_client.last(),
            Some(&reply(serial, Outcome::with_code(code, result))),
            "{name}"
        );
    }
}

#[test]
fn binary_unbalanced_and_backslashes() {
    let cases: [(&str, u64, &str, &str); 5] = [
        (
            "main 12",
            12,
            "string length {a\0bé中\u{fffd}\n\r\tz}",
            "10",
        ),
        (
            "main 13",
            13,
            "set bin a\0bé中\\n\\r\\t\\{z",
            "a\0bé中\n\r\t{z",
        ),
        ("main 15", 15, "set ub \\{\\{\\{", "{{{"),
        ("main 16", 16, "set be abc\\\\", "abc\\"),
        ("main 4", 4, "expr 1/0", "divide by zero"),
    ];
    for (name, serial, fragment, result) in cases {
        let (c2s, s2c) = find(name);
        let (_, to_server, to_client) = run(name, c2s, s2c);
        assert_eq!(to_server, vec![send(serial, &[fragment])], "{name}");
        let Some(Message::Reply { outcome, .. }) = to_client.last() else {
            panic!("{name}: no reply");
        };
        assert_eq!(outcome.result, result, "{name}");
    }
}

#[test]
fn large_payload() {
    let (c2s, s2c) = find("main 14");
    let (_, to_server, to_client) = run("main 14", c2s, s2c);
    assert_eq!(to_server, vec![send(14, &["string repeat x 200000"])]);
    assert_eq!(to_client, vec![reply(14, Outcome::ok("x".repeat(200_000)))]);
}

#[test]
fn several_requests_on_one_connection() {
    let (c2s, s2c) = find("main 17");
    let (_, to_server, to_client) = run("main 17", c2s, s2c);
    let serials: Vec<_> = to_server
        .iter()
        .map(|m| m.serial().unwrap().0.clone())
        .collect();
    assert_eq!(serials, ["17", "18", "19", "20"]);
    assert_eq!(to_client.len(), 3);
}

#[test]
fn anonymous_client_and_server_calling_back() {
    let (c2s, s2c) = find("anonymous 1");
    let (offer, to_server, to_client) = run("anonymous 1", c2s, s2c);
    assert_eq!(offer.unwrap().remote_id, "0");
    assert_eq!(
        to_server,
        vec![
            send(1, &["set a anon"]),
            send(2, &["askback"]),
            reply(1, Outcome::ok("client-value")),
        ]
    );
    assert_eq!(
        to_client,
        vec![
            vers3(),
            reply(1, Outcome::ok("anon")),
            send(1, &["set ::cv"]),
            reply(2, Outcome::ok("client says client-value")),
        ]
    );
}

#[test]
fn listening_client_out_of_order_callbacks() {
    let (c2s, s2c) = find("listening-client 1");
    let (offer, to_server, to_client) = run("listening-client 1", c2s, s2c);
    assert_eq!(offer.unwrap().remote_id, "45022");
    assert_eq!(to_server.len(), 5);
    let callbacks: Vec<_> = to_client
        .iter()
        .filter_map(|m| match m {
            Message::Callback { serial, outcome } => {
                Some((serial.0.as_str(), outcome.result.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(callbacks, [("4", "delayed B"), ("3", "delayed A")]);
    assert_eq!(
        to_client[3],
        Message::Async {
            serial: Serial::from(2),
            script: vec!["set ::notified yes".into()]
        }
    );
}

/// The raw handshake experiments: the first line, then the messages that
/// follow it, in every chunking.
fn raw(data: &[u8]) -> (Result<Offer, HandshakeError>, Vec<Message>) {
    let got = receive(true, [data]);
    check_chunkings(true, data, &got);
    let offer = handshake::parse_offer(got.line.as_deref().unwrap(), "127.0.0.1", 40255);
    (offer, decode_all(&got.words))
}

fn offer(version: u8, id: &str) -> Result<Offer, HandshakeError> {
    Ok(Offer {
        version,
        remote_id: id.into(),
    })
}

#[test]
fn raw_handshakes() {
    let (o, msgs) = raw(b"{3 2} 1234\n{send 1 {{set a 1}}}\n");
    assert_eq!(o, offer(3, "1234"));
    assert_eq!(o.unwrap().answer(), b"{vers 3}\r\n");
    assert_eq!(msgs, vec![send(1, &["set a 1"])]);

    let (o, msgs) = raw(b"{2} 1235\n{send 1 {{set a 2}}}\n");
    assert_eq!(o, offer(2, "1235"));
    assert_eq!(o.unwrap().answer(), b"");
    assert_eq!(msgs, vec![send(1, &["set a 2"])]);

    assert_eq!(raw(b"{4 3 2} 1236\n").0, offer(3, "1236"));
    assert_eq!(raw(b"3 1237\n").0, offer(3, "1237"));
    assert_eq!(raw(b"{2 3} 1237\n").0, offer(2, "1237"));

    for (data, line) in [
        (&b"{5 4} 1238\n"[..], "{5 4} 1238"),
        (b"hello\n", "hello"),
        (b"\n", ""),
    ] {
        let err = raw(data).0.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Unknown offered protocols \"{line}\" from 127.0.0.1/40255")
        );
    }
    let err = raw(b"{3 2 1240\n").0.unwrap_err();
    assert!(matches!(err, HandshakeError::List(_)));
    assert_eq!(err.to_string(), "unmatched open brace in list");

    assert_eq!(raw(b"{3 2} 1241 extra words here\n").0, offer(3, "1241"));

    let (o, msgs) = raw(b"{3 2} 1242\r\n{send 1 {{set a 3}}}\n");
    assert_eq!(o, offer(3, "1242"));
    assert_eq!(msgs, vec![send(1, &["set a 3"])]);

    // A lone CR ends the line too (Tcl's -translation auto).
    let (o, msgs) = raw(b"{3 2} 1243\r{send 1 {{set a 4}}}\n");
    assert_eq!(o, offer(3, "1243"));
    assert_eq!(msgs, vec![send(1, &["set a 4"])]);

    let (o, msgs) = raw(b"{3 2}\n{send 1 {{set a 5}}}\n");
    assert_eq!(o, offer(3, ""));
    assert_eq!(msgs, vec![send(1, &["set a 5"])]);

    let (o, msgs) = raw(b"{3 2} 1244 {send 1 {{set a 7}}}\n{send 2 {{set a 8}}}\n");
    assert_eq!(o, offer(3, "1244"));
    assert_eq!(msgs, vec![send(2, &["set a 8"])]);

    let (_, msgs) = raw(b"{3 2} 1245\n{send 1 {{set a 9}}} {send 2 {{set a 10}}}\n");
    assert_eq!(msgs, vec![send(1, &["set a 9"]), send(2, &["set a 10"])]);

    let (_, msgs) = raw(b"{3 2} 1247\nfoo bar {send 3 {{set a 12}}}\n");
    assert_eq!(
        msgs,
        vec![
            Message::Unknown {
                words: vec!["foo".into()]
            },
            Message::Unknown {
                words: vec!["bar".into()]
            },
            send(3, &["set a 12"]),
        ]
    );

    let (_, msgs) = raw(b"{3 2} 1248\n{bogus 1 {{set a 13}}}\n{send 2 {{set a 14}}}\n");
    assert_eq!(
        msgs,
        vec![
            Message::Unknown {
                words: vec!["bogus".into(), "1".into(), "{set a 13}".into()]
            },
            send(2, &["set a 14"]),
        ]
    );

    let (_, msgs) = raw(b"{3 2} 1252\n{send 1 {{set a 17}} extra stuff}\n");
    assert_eq!(msgs, vec![send(1, &["set a 17"])]);
}

#[test]
fn peer_ids_and_offers() {
    assert_eq!(handshake::client_offer("45002"), b"{3 2} 45002\n");
    assert_eq!(handshake::client_offer("0"), b"{3 2} 0\n");
    assert_eq!(handshake::client_offer(""), b"{3 2} {}\n");
    let o = Offer {
        version: 3,
        remote_id: "46587".into(),
    };
    assert_eq!(o.peer_id("127.0.0.1", "127.0.0.1"), "46587");
    assert_eq!(o.peer_id("127.0.0.2", "127.0.0.1"), "46587 127.0.0.1");
}

#[test]
fn unicode_whitespace_separates_words_as_in_tcl() {
    // Tcl's `\s` includes U+00A0, U+2028, U+3000, U+FEFF...
    let data = "\u{a0}{send 1 x}\u{3000}foo\u{2028}\u{feff}bar\u{85}{vers 3}é{a}".as_bytes();
    let got = receive(false, [data]);
    assert_eq!(got.words, ["send 1 x", "foo", "bar", "vers 3"]);
    // `é{a}` is a bare word still waiting for whitespace.
    assert_eq!(
        got.eof,
        Eof::Truncated {
            bytes: "é{a}".len()
        }
    );
    check_chunkings(false, data, &got);
}

#[test]
fn outcome_encoding_and_codes() {
    assert_eq!(Outcome::ok("").encode(), "return -code 0 {}");
    assert_eq!(
        Outcome::error("boom", "my info", "MY CODE").encode(),
        "return -code 1 -errorinfo {my info} -errorcode {MY CODE} boom"
    );
    assert_eq!(
        Outcome::with_code(Code::Other(7), "x").encode(),
        "return -code 7 x"
    );
    // Only code 1 carries errorinfo/errorcode.
    let mut o = Outcome::with_code(Code::Break, "");
    o.errorinfo = "ignored".into();
    assert_eq!(o.encode(), "return -code 3 {}");

    for (text, code) in [
        ("", Code::Ok),
        ("0", Code::Ok),
        ("ok", Code::Ok),
        ("1", Code::Error),
        ("error", Code::Error),
        ("2", Code::Return),
        ("return", Code::Return),
        ("break", Code::Break),
        ("continue", Code::Continue),
        ("5", Code::Other(5)),
        ("-1", Code::Other(-1)),
        (" 0x10 ", Code::Other(16)),
        ("010", Code::Other(8)),
        ("4294967295", Code::Other(-1)),
        ("08", Code::Invalid("08".into())),
        ("Error", Code::Invalid("Error".into())),
        ("bogus", Code::Invalid("bogus".into())),
        ("99999999999", Code::Invalid("99999999999".into())),
    ] {
        assert_eq!(Code::parse(text), code, "{text:?}");
    }
    assert_eq!(Code::Invalid("bogus".into()).to_string(), "bogus");
    assert_eq!(Code::Continue.to_string(), "4");

    // Decoding as tcllib's requester: pairs between `return` and the
    // result, unknown switches ignored, last one wins, single element is
    // the result.
    let o = Outcome::decode("return -code 1 -level 0 -errorcode A -errorcode B r").unwrap();
    assert_eq!(
        (o.code, o.errorcode.as_str(), o.result.as_str()),
        (Code::Error, "B", "r")
    );
    // A code that is not a canonical number keeps its text (tcllib passes
    // it to callbacks as is); `send` still reads it as Tcl's `return -code`.
    let empty = Code::Invalid(String::new());
    let o = Outcome::decode("return").unwrap();
    assert_eq!((o.code, o.result.as_str()), (empty.clone(), "return"));
    let o = Outcome::decode("").unwrap();
    assert_eq!((o.code, o.result.as_str()), (empty.clone(), ""));
    let o = Outcome::decode("return -code").unwrap();
    assert_eq!((o.code, o.result.as_str()), (empty, "-code"));
    let o = Outcome::decode("return -code ok fine").unwrap();
    assert_eq!(o.code, Code::Invalid("ok".into()));
    assert_eq!(tclcomm_wire::answer::sync_result(o), Ok("fine".into()));
    let o = Outcome::decode("return -code error bad").unwrap();
    let f = tclcomm_wire::answer::sync_result(o).unwrap_err();
    assert_eq!((f.return_code, f.message.as_str()), (1, "bad"));
    assert_eq!((f.errorinfo, f.errorcode), (None, None));
    assert_eq!(Code::parse_exact("1"), Code::Error);
    assert_eq!(Code::parse_exact("01"), Code::Invalid("01".into()));
    let o = Outcome::decode("return -code 3 -errorinfo").unwrap();
    assert_eq!(
        (o.code, o.errorinfo.as_str(), o.result.as_str()),
        (Code::Break, "", "-errorinfo")
    );
}

#[test]
fn message_edge_cases() {
    // Zero fragments: tcllib evaluates `uplevel #0` with nothing.
    assert_eq!(
        Message::decode("send 1").unwrap(),
        Message::Send {
            serial: Serial::from(1),
            script: vec![]
        }
    );
    // The serial is opaque text and echoed verbatim.
    let m = Message::decode("send abc {{set a 24}}").unwrap();
    assert_eq!(m.serial(), Some(&Serial("abc".into())));
    let r = reply(0, Outcome::ok("24"));
    let Message::Reply { outcome, .. } = r else {
        unreachable!()
    };
    let r = Message::Reply {
        serial: Serial("abc".into()),
        outcome,
    };
    assert_eq!(r.encode(), b"{reply abc {return -code 0 24}}\n");
    assert_eq!(
        Message::decode("vers").unwrap(),
        Message::Vers {
            version: String::new()
        }
    );
    assert_eq!(
        Message::decode(" ").unwrap(),
        Message::Unknown { words: vec![] }
    );
    // The payload is not a list: instruction and serial still known.
    let err = Message::decode("send 7 {a {b}c}").unwrap_err();
    assert!(matches!(
        err,
        tclcomm_wire::MessageError::Payload { ref instruction, ref serial, .. }
            if instruction == "send" && serial.0 == "7"
    ));
    assert!(matches!(
        Message::decode("a {b}c").unwrap_err(),
        tclcomm_wire::MessageError::List(_)
    ));
    // Extra words are ignored.
    assert_eq!(
        Message::decode("send 1 {{set a 17}} extra stuff").unwrap(),
        send(1, &["set a 17"])
    );
    // Multiple messages batch into one buffer.
    let mut out = String::new();
    send(1, &["set a 1"]).encode_into(&mut out);
    vers3().encode_into(&mut out);
    Message::Unknown {
        words: vec!["#x".into(), "#y".into()],
    }
    .encode_into(&mut out);
    assert_eq!(out, "{send 1 {{set a 1}}}\n{vers 3}\n{{#x} #y}\n");
}

/// A captured session: name, client-to-server reads, server-to-client reads.
type Transcript = (
    &'static str,
    &'static [&'static [u8]],
    &'static [&'static [u8]],
);

/// Generated from spec §2.9: (name, client-to-server reads, server-to-client reads).
const TRANSCRIPTS: &[Transcript] = &[
    (
        "main 1",
        &[
            b"{3 2} 45002\n{send 1 {{set a 1}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{reply 1 {return -code 0 1}}\n",
        ],
    ),
    (
        "main 2",
        &[
            b"{3 2} 45002\n{send 2 {set b {hello world}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{reply 2 {return -code 1 -errorinfo {wrong # args: should be \"set varName ?newValue?\"\n    while executing\n\"set b hello world\"\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 set b {hello world}\"\n    invoked from within\n\"catch $thecmd ret\"} -errorcode {TCL WRONGARGS} {wrong # args: should be \"set varName ?newValue?\"}}}\n",
        ],
    ),
    (
        "main 3",
        &[
            b"{3 2} 45002\n{send 3 {{error boom {my info} {MY CODE}}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{reply 3 {return -code 1 -errorinfo {my info\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 {error boom {my info} {MY CODE}}\"\n    invoked from within\n\"catch $thecmd ret\"} -errorcode {MY CODE} boom}}\n",
        ],
    ),
    (
        "main 4",
        &[
            b"{3 2} 45002\n{send 4 {{expr 1/0}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{reply 4 {return -code 1 -errorinfo {divide by zero\n    invoked from within\n\"expr 1/0\"\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 {expr 1/0}\"\n    invoked from within\n\"catch $thecmd ret\"} -errorcode {ARITH DIVZERO {divide by zero}} {divide by zero}}}\n",
        ],
    ),
    (
        "main 5",
        &[
            b"{3 2} 45002\n{async 5 {{set c 3}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
        ],
    ),
    (
        "main 6",
        &[
            b"{3 2} 45002\n{command 6 {{set d 4}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{callback 6 {return -code 0 4}}\n",
        ],
    ),
    (
        "main 7",
        &[
            b"{3 2} 45002\n{command 7 {{error oops}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{callback 7 {return -code 1 -errorinfo {oops\n    while executing\n\"error oops\"\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 {error oops}\"\n    invoked from within\n\"catch $thecmd ret\"} -errorcode NONE oops}}\n",
        ],
    ),
    (
        "main 8",
        &[
            b"{3 2} 45002\n{send 8 break}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{reply 8 {return -code 3 {}}}\n",
        ],
    ),
    (
        "main 9",
        &[
            b"{3 2} 45002\n{send 9 continue}\n",
        ],
        &[
            b"{reply 9 {return -code 4 {}}}\n",
        ],
    ),
    (
        "main 10",
        &[
            b"{3 2} 45002\n{send 10 {{return -code return xyz}}}\n",
        ],
        &[
            b"{reply 10 {return -code 2 xyz}}\n",
        ],
    ),
    (
        "main 11",
        &[
            b"{3 2} 45002\n{send 11 {{return -code 5 five}}}\n",
        ],
        &[
            b"{reply 11 {return -code 2 five}}\n",
        ],
    ),
    (
        "main 12",
        &[
            b"{3 2} 45002\n{send 12 {{string length {a\x00b\xc3\xa9\xe4\xb8\xad\xef\xbf\xbd\n\r\tz}}}}\n",
        ],
        &[
            b"{reply 12 {return -code 0 10}}\n",
        ],
    ),
    (
        "main 13",
        &[
            b"{3 2} 45002\n{send 13 {{set bin a\x00b\xc3\xa9\xe4\xb8\xad\\n\\r\\t\\{z}}}\n",
        ],
        &[
            b"{reply 13 {return -code 0 a\x00b\xc3\xa9\xe4\xb8\xad\\n\\r\\t\\{z}}\n",
        ],
    ),
    (
        "main 14",
        &[
            b"{3 2} 45002\n{send 14 {{string repeat x 200000}}}\n",
        ],
        &[
            b"",  // transcript 14: built by big_reply()
        ],
    ),
    (
        "main 15",
        &[
            b"{3 2} 45002\n{send 15 {{set ub \\{\\{\\{}}}\n",
        ],
        &[
            b"{reply 15 {return -code 0 \\{\\{\\{}}\n",
        ],
    ),
    (
        "main 16",
        &[
            b"{3 2} 45002\n{send 16 {{set be abc\\\\}}}\n",
        ],
        &[
            b"{reply 16 {return -code 0 abc\\\\}}\n",
        ],
    ),
    (
        "main 17",
        &[
            b"{3 2} 45002\n{send 17 {{set x 1}}}\n",
            b"{send 18 {{set x 2}}}\n",
            b"{async 19 {{set x 3}}}\n",
            b"{command 20 {{set x 4}}}\n",
        ],
        &[
            b"{reply 17 {return -code 0 1}}\n",
            b"{reply 18 {return -code 0 2}}\n",
            b"{callback 20 {return -code 0 4}}\n",
        ],
    ),
    (
        "main 18",
        &[
            b"{3 2} 45002\n{send 21 {{delayed 200 fut}}}\n",
        ],
        &[
            b"{reply 21 {return -code 0 fut}}\n",
        ],
    ),
    (
        "main 19",
        &[
            b"{3 2} 45002\n{send 22 {{delayederr 200 futerr}}}\n",
        ],
        &[
            b"{reply 22 {return -code 1 -errorinfo {no complete word found/2\n    while executing\n\"Word0 data\"} -errorcode NONE futerr}}\n",
        ],
    ),
    (
        "anonymous 1",
        &[
            b"{3 2} 0\n",
            b"{send 1 {{set a anon}}}\n",
            b"{send 2 askback}\n",
            b"{reply 1 {return -code 0 client-value}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{reply 1 {return -code 0 anon}}\n",
            b"{send 1 {{set ::cv}}}\n",
            b"{reply 2 {return -code 0 {client says client-value}}}\n",
        ],
    ),
    (
        "listening-client 1",
        &[
            b"{3 2} 45022\n",
            b"{send 1 askback}\n",
            b"{reply 1 {return -code 0 client-value}}\n",
            b"{send 2 notify}\n",
            b"{command 3 {{future 600 A}}}\n",
            b"{command 4 {{future 200 B}}}\n",
        ],
        &[
            b"{vers 3}\r\n",
            b"{send 1 {{set ::cv}}}\n",
            b"{reply 1 {return -code 0 {client says client-value}}}\n",
            b"{async 2 {{set ::notified yes}}}\n",
            b"{reply 2 {return -code 0 ok}}\n",
            b"{callback 4 {return -code 0 {delayed B}}}\n",
            b"{callback 3 {return -code 0 {delayed A}}}\n",
        ],
    ),
];
