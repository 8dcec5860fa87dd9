//! Tcl 8.6's lenient UTF-8 decoder, for the bytes a peer sends.
//!
//! tcllib comm reads its sockets with `-encoding utf-8`, and Tcl 8.6's
//! decoder never fails: what is not UTF-8 it still turns into characters.
//! A peer that sends such bytes (a Tcl 8.6 program that built a string with
//! `encoding convertto`, a C client, or simply a broken one) gets its
//! message evaluated by tcllib, not its connection closed, so we decode the
//! same way. The rules, from Tcl 8.6.13's `Tcl_UtfToUniChar` and checked
//! against `tclsh` (see `tests/tcl_utf8_diff.rs`, through a real socket):
//!
//! - Valid UTF-8 is decoded as usual (4-byte sequences too).
//! - A byte that does not begin a well-formed sequence stands for itself:
//!   the character U+0080..U+00FF with its value. This covers stray
//!   continuation bytes, lead bytes `F8..FF`, truncated sequences (each of
//!   their bytes), and overlong forms (`C1 BF`, `E0 80 80`, `F0 80 80 80`)
//!   and 4-byte forms above U+10FFFF, which are taken byte by byte.
//! - The one overlong form kept is `C0 80`, Tcl's own NUL: U+0000.
//! - Surrogates encoded in 3 bytes (CESU-8) are decoded: a high half
//!   followed by a low half is the character they pair to, as in Tcl 8.6,
//!   whose strings are UTF-16. A lone half cannot be in a Rust `String`; it
//!   becomes U+FFFD, as elsewhere in this crate (`list` does the same for
//!   `\uD800`). That is the one place where we differ from Tcl.
//!
//! A byte that stands for itself becomes two bytes of UTF-8, so the decoded
//! text is at most twice as long as the input.

use std::borrow::Cow;

/// How many ASCII bytes in a row send the decoder back to SIMD validation.
const ASCII_RUN: usize = 16;

/// The character a lone surrogate half becomes.
const REPLACEMENT: char = '\u{FFFD}';

/// One character as Tcl 8.6 decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TclChar {
    /// How many bytes it takes.
    pub len: usize,
    /// Its code (a surrogate half for CESU-8, not yet paired).
    pub code: u32,
}

/// Decodes `bytes` as Tcl 8.6 reads them from a channel with
/// `-encoding utf-8` (see the module documentation). Valid UTF-8 is
/// borrowed, after one SIMD validation; anything else is decoded into a new
/// string of at most `2 * bytes.len()` bytes.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::new();
            decode_into(bytes, &mut out);
            Cow::Owned(out)
        }
    }
}

/// Appends the Tcl 8.6 decoding of `bytes` to `out` (see [`decode`]). The
/// bytes are a whole message: a sequence cut off by their end is taken
/// byte by byte.
pub fn decode_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Valid runs go through in one piece.
        let valid = match simdutf8::compat::from_utf8(&bytes[i..]) {
            Ok(s) => {
                out.push_str(s);
                return;
            }
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            // Known valid: this second check cannot fail.
            if let Ok(s) = simdutf8::basic::from_utf8(&bytes[i..i + valid]) {
                out.push_str(s);
            }
            i += valid;
        }
        // `bytes[i]` begins what strict UTF-8 rejects. Go on character by
        // character until a run of ASCII (where valid text most likely goes
        // on), so that bad bytes close together do not each cost a call of
        // the SIMD validator.
        while i < bytes.len() {
            if bytes[i] < 0x80 {
                if bytes[i..].iter().take(ASCII_RUN).all(u8::is_ascii) {
                    break;
                }
                out.push(char::from(bytes[i]));
                i += 1;
            } else {
                i += push_char(bytes, i, out);
            }
        }
    }
}

/// Appends the character at `bytes[i]` as Tcl 8.6 decodes it, pairing a
/// CESU-8 high surrogate half with a low half right after it; returns the
/// bytes taken. At the end of `bytes`, a cut-off sequence's first byte
/// stands for itself.
fn push_char(bytes: &[u8], i: usize, out: &mut String) -> usize {
    let c = char_at(bytes, i).unwrap_or(TclChar {
        len: 1,
        code: u32::from(bytes[i]),
    });
    let next = i + c.len;
    if (0xD800..0xDC00).contains(&c.code)
        && next < bytes.len()
        && let Some(low) = char_at(bytes, next).filter(|l| (0xDC00..0xE000).contains(&l.code))
    {
        let code = 0x10000 + ((c.code - 0xD800) << 10) + (low.code - 0xDC00);
        out.push(char::from_u32(code).unwrap_or(REPLACEMENT));
        return c.len + low.len;
    }
    out.push(char::from_u32(c.code).unwrap_or(REPLACEMENT));
    c.len
}

/// The character at `bytes[i]` as Tcl 8.6 decodes it, or `None` if it is
/// the start of a sequence that the end of `bytes` cuts off (with more
/// bytes it may still be one character; at the end of a message each of
/// its bytes stands for itself).
pub(crate) fn char_at(bytes: &[u8], i: usize) -> Option<TclChar> {
    let b = bytes[i];
    let need = match b {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        // ASCII, a stray continuation byte, or F8..FF: itself.
        _ => {
            return Some(TclChar {
                len: 1,
                code: u32::from(b),
            });
        }
    };
    let itself = TclChar {
        len: 1,
        code: u32::from(b),
    };
    let tail = &bytes[i + 1..bytes.len().min(i + need)];
    if tail.iter().any(|&t| t & 0xC0 != 0x80) {
        // Not followed by enough continuation bytes, whatever comes next.
        return Some(itself);
    }
    if tail.len() < need - 1 {
        return None;
    }
    let mut code = u32::from(b) & (0x7F >> need);
    for &t in tail {
        code = code << 6 | u32::from(t & 0x3F);
    }
    let ok = match need {
        // Overlong forms of ASCII stand for themselves; `C0 80` is NUL.
        2 => code == 0 || code >= 0x80,
        3 => code >= 0x800,
        _ => (0x10000..=0x10FFFF).contains(&code),
    };
    Some(if ok {
        TclChar { len: need, code }
    } else {
        itself
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn units(bytes: &[u8]) -> Vec<u32> {
        decode(bytes).chars().map(u32::from).collect()
    }

    /// The cases checked by hand against tclsh 8.6.13's
    /// `encoding convertfrom utf-8`.
    #[test]
    fn as_tclsh_decodes() {
        let cases: &[(&[u8], &[u32])] = &[
            (b"A", &[0x41]),
            (b"\xc0", &[0xC0]),
            (b"\xc0\x80", &[0]),
            (b"\xc1\xbd", &[0xC1, 0xBD]),
            (b"\xc2\x7f", &[0xC2, 0x7F]),
            (b"\xc2\x85", &[0x85]),
            (b"\xe0\x80\x80", &[0xE0, 0x80, 0x80]),
            (b"\xe0\xa0\x80", &[0x800]),
            (b"\xed\xa0\x80", &[0xFFFD]),
            (b"\xed\xa0\xbd\xed\xb8\x80", &[0x1F600]),
            (b"\xed\xb8\x80", &[0xFFFD]),
            (b"\xf0\x9f\x98\x80", &[0x1F600]),
            (b"\xf0\x9f\x98", &[0xF0, 0x9F, 0x98]),
            (b"\xf4\x90\x80\x80", &[0xF4, 0x90, 0x80, 0x80]),
            (b"\xf5\x80\x80\x80", &[0xF5, 0x80, 0x80, 0x80]),
            (b"\xf0\x8f\x80\x80", &[0xF0, 0x8F, 0x80, 0x80]),
            (b"\xf8\xff\x80\xa0", &[0xF8, 0xFF, 0x80, 0xA0]),
            (b"\xe2\x82}", &[0xE2, 0x82, 0x7D]),
            (b"\xef\xbf\xbf", &[0xFFFF]),
            (b"\xf4\x8f\xbf\xbf", &[0x10FFFF]),
            (b"\x00", &[0]),
        ];
        for (bytes, want) in cases {
            assert_eq!(units(bytes), *want, "{bytes:02x?}");
        }
    }

    /// The plain definition: character by character, no SIMD runs.
    fn reference(bytes: &[u8]) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < bytes.len() {
            i += push_char(bytes, i, &mut out);
        }
        out
    }

    proptest::proptest! {
        /// Switching between SIMD runs and the character-by-character loop
        /// changes nothing.
        #[test]
        fn runs_match_the_plain_definition(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::num::u8::ANY, 0..8),
                    "[ -~é中😀]{0,40}".prop_map(String::into_bytes),
                    proptest::sample::select(vec![
                        b"\xed\xa0\xbd\xed\xb8\x80".to_vec(),
                        b"\xed\xa0\x80".to_vec(),
                        b"\xc0\x80".to_vec(),
                        b"\xf0\x9f\x98".to_vec(),
                    ]),
                ],
                0..12,
            )
        ) {
            let bytes = parts.concat();
            proptest::prop_assert_eq!(decode(&bytes).into_owned(), reference(&bytes));
        }
    }

    #[test]
    fn valid_text_is_borrowed() {
        assert!(matches!(decode("aé中😀".as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn at_most_twice_as_long() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert!(decode(&bytes).len() <= 2 * bytes.len());
        assert_eq!(decode(&[0xFF; 100]).len(), 200);
    }

    #[test]
    fn cut_off_sequences_wait() {
        assert_eq!(char_at(b"\xe2\x82", 0), None);
        assert_eq!(char_at(b"\xf0", 0), None);
        assert_eq!(char_at(b"\xe2x", 0), Some(TclChar { len: 1, code: 0xE2 }));
        assert_eq!(
            char_at("\u{a0}".as_bytes(), 0),
            Some(TclChar { len: 2, code: 0xA0 })
        );
    }
}
