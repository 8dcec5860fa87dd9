//! Tcl "modified UTF-8" ↔ Rust strings.
//!
//! Tcl 8.6 stores NUL as `C0 80` and characters above U+FFFF as a CESU-8
//! surrogate pair (two 3-byte sequences); Tcl 9 (feature `tcl9`) stores NUL
//! as `C0 80` too but characters above U+FFFF as plain 4-byte UTF-8 (a
//! CESU-8 pair would be two lone surrogates there). [`from_tcl`] reads
//! either form. Handing Tcl plain UTF-8 *looks*
//! right (`string length` agrees) but `string equal` against a Tcl-built
//! string and dict lookups fail, so every string crossing the boundary goes
//! through these two functions.

use std::borrow::Cow;

/// Rust string → the bytes Tcl 8.6 expects. Borrowed when `s` has no NUL and
/// no character above U+FFFF (the usual case).
pub fn to_tcl(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    // A 4-byte sequence starts with F0..F4; NUL is 00. Nothing else changes
    // (on Tcl 9, only NUL).
    let split_non_bmp = !cfg!(feature = "tcl9");
    if !b.iter().any(|&c| c == 0 || (split_non_bmp && c >= 0xF0)) {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len() + 8);
    for ch in s.chars() {
        let c = ch as u32;
        if c == 0 {
            out.extend_from_slice(&[0xC0, 0x80]);
        } else if split_non_bmp && c > 0xFFFF {
            let v = c - 0x1_0000;
            push_3byte(&mut out, 0xD800 | (v >> 10));
            push_3byte(&mut out, 0xDC00 | (v & 0x3FF));
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

fn push_3byte(out: &mut Vec<u8>, u: u32) {
    // Truncations are intended: each byte takes its 4 or 6 bits.
    out.push(0xE0 | (u >> 12) as u8);
    out.push(0x80 | ((u >> 6) & 0x3F) as u8);
    out.push(0x80 | (u & 0x3F) as u8);
}

/// The surrogate encoded at `b[i..i + 3]`, if any.
fn surrogate_at(b: &[u8], i: usize) -> Option<u32> {
    match b.get(i..i + 3)? {
        [0xED, b1 @ 0xA0..=0xBF, b2 @ 0x80..=0xBF] => {
            Some(0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F))
        }
        _ => None,
    }
}

/// Tcl bytes → Rust string. Borrowed when the bytes are valid UTF-8 (valid
/// UTF-8 cannot contain `C0 80` or encoded surrogates, so it is already
/// exact). Otherwise `C0 80` becomes NUL, surrogate pairs are joined, a lone
/// surrogate becomes U+FFFD and any other invalid byte is taken as a Latin-1
/// character, as Tcl itself does.
pub fn from_tcl(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(decode_slow(b)),
    }
}

fn decode_slow(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let valid = match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => e.valid_up_to(),
        };
        if let Ok(s) = std::str::from_utf8(&rest[..valid]) {
            out.push_str(s);
        }
        i += valid;
        if b.get(i..i + 2) == Some(&[0xC0, 0x80]) {
            out.push('\0');
            i += 2;
        } else if let Some(hi) = surrogate_at(b, i) {
            let lo = surrogate_at(b, i + 3).filter(|lo| (0xDC00..0xE000).contains(lo));
            match (hi, lo) {
                (0xD800..0xDC00, Some(lo)) => {
                    let c = 0x1_0000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                    i += 6;
                }
                _ => {
                    out.push('\u{FFFD}');
                    i += 3;
                }
            }
        } else {
            out.push(char::from(b[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_paths_borrow() {
        assert!(matches!(to_tcl("héllo 中"), Cow::Borrowed(_)));
        assert!(matches!(from_tcl("héllo 中".as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn nul_and_non_bmp() {
        let s = "a\0bé中😀z";
        let t = to_tcl(s);
        assert_eq!(
            &*t,
            b"a\xC0\x80b\xC3\xA9\xE4\xB8\xAD\xED\xA0\xBD\xED\xB8\x80z".as_slice()
        );
        assert_eq!(from_tcl(&t), s);
    }

    #[test]
    fn measured_tcl_bytes() {
        // Bytes observed from Tcl 8.6.13 (see the FFI notes).
        assert_eq!(from_tcl(b"a\xed\xa0\xbd\xed\xb8\x80b"), "a😀b");
        assert_eq!(from_tcl(b"a\xc0\x80b\xc3\xa9"), "a\0bé");
    }

    #[test]
    fn invalid_bytes() {
        assert_eq!(from_tcl(b"a\xffb"), "a\u{ff}b");
        assert_eq!(from_tcl(b"\xed\xa0\xbdx"), "\u{FFFD}x");
        assert_eq!(from_tcl(b"\xed\xb8\x80"), "\u{FFFD}");
        assert_eq!(from_tcl(b"x\xc0"), "x\u{c0}");
    }

    #[test]
    fn round_trip_all_planes() {
        let s: String = (0u32..0x11_0000)
            .step_by(97)
            .filter_map(char::from_u32)
            .chain(['\0', '\u{FFFF}', '\u{10000}', '\u{10FFFF}'])
            .collect();
        assert_eq!(from_tcl(&to_tcl(&s)), s);
    }
}
