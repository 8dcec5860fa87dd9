//! comm ids: a port, or `{port host}`.
//!
//! The host may be an IPv6 address: the id `45000 ::1` (written
//! `{45000 ::1}` in Tcl source; `:` needs no quoting in a list). Written by a person,
//! an id may also be `HOST:PORT` or `[V6]:PORT` (see [`Id::parse`]).

use thiserror::Error;

use crate::list;

/// An id written by a person that [`Id::parse`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid id \"{text}\": {why} (expected PORT, HOST:PORT, [IPV6]:PORT or \"PORT HOST\")")]
pub struct IdError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
}

/// The host an id without one refers to (tcllib's `comm(localhost)`).
pub const LOCALHOST: &str = "127.0.0.1";

/// A comm id, kept as the Tcl text tcllib uses as its key: `45001`, or the
/// list `{45001 host}`. Ids compare as exact strings, as in tcllib, so
/// `45001` and `{45001 127.0.0.1}` are different peers.
///
/// Cheap to clone: the text is shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(std::sync::Arc<str>);

impl Id {
    /// The id with exactly this Tcl text (taken verbatim, as tcllib does with
    /// ids received in a handshake).
    pub fn from_text(text: impl Into<String>) -> Id {
        Id(std::sync::Arc::from(text.into()))
    }

    /// Reads an id as a person writes it: `PORT` (the default host, as in
    /// comm), `HOST:PORT`, `[V6]:PORT` for an IPv6 address, or comm's own
    /// form, the Tcl list `PORT HOST` (`45000 ::1`; the host may also be
    /// bracketed there). The port is a decimal number (0 is the anonymous
    /// id). The id's text is comm's form: `45000`, or `45000 ::1`.
    ///
    /// An IPv6 address without brackets is refused in the `HOST:PORT` form,
    /// since its last group cannot be told from a port (`::1:4500`).
    ///
    /// Unlike [`Id::from_text`], which keeps an id exactly as a peer sent
    /// it, this checks and normalizes: `{4500}` becomes `4500`.
    pub fn parse(text: &str) -> Result<Id, IdError> {
        let bad = |why: &str| IdError {
            text: text.to_string(),
            why: why.to_string(),
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(bad("empty"));
        }
        let with_host = |port: &str, host: &str| {
            let port = parse_port(port).map_err(|why| bad(&why))?;
            let host = unbracket(host).map_err(|why| bad(&why))?;
            Ok(Id::with_host(port.to_string(), host))
        };
        if t.chars().any(char::is_whitespace) || t.starts_with('{') {
            let words = list::parse_list(t).map_err(|e| bad(&e.to_string()))?;
            return match words.as_slice() {
                [port] => Ok(Id::port(parse_port(port).map_err(|why| bad(&why))?)),
                [port, host] => with_host(port, host),
                _ => Err(bad("an id in comm's form has one or two words")),
            };
        }
        if t.starts_with('[') {
            let Some((host, port)) = t.rsplit_once("]:") else {
                return Err(bad("a bracketed IPv6 address needs a port: [V6]:PORT"));
            };
            return with_host(port, &format!("{host}]"));
        }
        match t.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                Err(bad("an IPv6 address needs brackets and a port: [V6]:PORT"))
            }
            Some((host, port)) => with_host(port, host),
            None => Ok(Id::port(parse_port(t).map_err(|why| bad(&why))?)),
        }
    }

    /// The id of a port on the default host: `45001`.
    pub fn port(port: u16) -> Id {
        Id::from_text(port.to_string())
    }

    /// The id `{port host}`.
    pub fn with_host(port: impl AsRef<str>, host: impl AsRef<str>) -> Id {
        Id::from_text(list::format_list([port.as_ref(), host.as_ref()]))
    }

    /// The Tcl text of the id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The elements of the id as a Tcl list (empty if the text is not a list).
    fn words(&self) -> Vec<String> {
        list::parse_list(&self.0).unwrap_or_default()
    }

    /// The port element (`lindex $id 0`), as text.
    pub fn port_text(&self) -> String {
        self.words().into_iter().next().unwrap_or_default()
    }

    /// The port number, if the port element is an integer in range.
    pub fn port_number(&self) -> Option<u16> {
        parse_tcl_int(&self.port_text()).and_then(|n| u16::try_from(n).ok())
    }

    /// The host element (`lindex $id 1`), or [`LOCALHOST`] when absent or empty.
    pub fn host(&self) -> String {
        match self.words().into_iter().nth(1) {
            Some(h) if !h.is_empty() => h,
            _ => LOCALHOST.to_string(),
        }
    }

    /// Whether this id names an anonymous (non-listening) peer: its port
    /// element is numerically 0 (`0`, `00`, `{0 host}`), as tcllib checks.
    pub fn is_anonymous(&self) -> bool {
        parse_tcl_int(&self.port_text()) == Some(0)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<u16> for Id {
    fn from(port: u16) -> Id {
        Id::port(port)
    }
}

impl From<&str> for Id {
    fn from(text: &str) -> Id {
        Id::from_text(text)
    }
}

impl From<String> for Id {
    fn from(text: String) -> Id {
        Id::from_text(text)
    }
}

/// Reads an id as a person writes it, with [`Id::parse`] (`PORT`,
/// `HOST:PORT`, `[V6]:PORT` or `"PORT HOST"`). To keep a peer's id text
/// verbatim, use [`Id::from_text`] or `From<&str>` instead.
impl std::str::FromStr for Id {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Id, Self::Err> {
        Id::parse(s)
    }
}

/// A decimal port number, 0 included.
fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("no port".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{text}\" is not a port number"));
    }
    text.parse::<u16>()
        .map_err(|_| format!("\"{text}\" is not a port number"))
}

/// The host of an id: not empty; `[V6]` is taken without its brackets and
/// must be an IPv6 address.
fn unbracket(host: &str) -> Result<&str, String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    match host.strip_prefix('[') {
        Some(rest) => {
            let inner = rest
                .strip_suffix(']')
                .ok_or_else(|| format!("\"{host}\" is not a host"))?;
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("\"{inner}\" is not an IPv6 address"))?;
            Ok(inner)
        }
        None if host.contains(['[', ']']) => Err(format!("\"{host}\" is not a host")),
        None => Ok(host),
    }
}

/// Parses an integer the way Tcl's `string is integer -strict` accepts one:
/// optional surrounding whitespace and sign, decimal, `0x` hex, `0o`/`0b`
/// prefixes, and Tcl 8.6's legacy leading-zero octal.
pub fn parse_tcl_int(text: &str) -> Option<i64> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(body, radix).ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<String, IdError> {
        Id::parse(text).map(|id| id.to_string())
    }

    #[test]
    fn person_forms() {
        for (text, want) in [
            ("4500", "4500"),
            (" 4500 ", "4500"),
            ("0", "0"),
            ("localhost:4500", "4500 localhost"),
            ("127.0.0.1:4500", "4500 127.0.0.1"),
            ("[::1]:4500", "4500 ::1"),
            ("[fe80::1:2]:4500", "4500 fe80::1:2"),
            ("4500 example.org", "4500 example.org"),
            ("4500 ::1", "4500 ::1"),
            ("4500 [::1]", "4500 ::1"),
            ("{4500}", "4500"),
        ] {
            assert_eq!(parsed(text).as_deref(), Ok(want), "{text:?}");
        }
        // FromStr reads the same forms.
        assert_eq!(
            "[::1]:45000".parse::<Id>().map(|i| i.host()),
            Ok("::1".to_string())
        );
    }

    #[test]
    fn person_forms_refused() {
        for text in [
            "",
            "x",
            "70000",
            "-1",
            "+1",
            "0x10",
            "host:",
            ":4500",
            "1 2 3",
            "{4500 ",
            "4500 {}",
            "::1",
            "::1:4500",
            "[::1]",
            "[::1]4500",
            "[x]:4500",
            "[::1:4500",
            "a]:4500",
            "4500 [nope]",
            "[]:1",
        ] {
            assert!(Id::parse(text).is_err(), "{text:?} accepted");
        }
        let e = Id::parse("::1:4500").map(|_| ()).map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.contains("[V6]:PORT")));
    }

    /// comm's form with an IPv6 host: the list elements are port and host.
    #[test]
    fn ipv6_host_elements() {
        let id = Id::with_host("45000", "::1");
        assert_eq!(id.as_str(), "45000 ::1");
        assert_eq!(id.host(), "::1");
        assert_eq!(id.port_number(), Some(45000));
        // `{45000 ::1}` is how Tcl source writes that id; the text itself
        // in braces is a one-element list whose port is not a number.
        assert!(Id::from_text("{45000 ::1}").port_number().is_none());
        assert!(Id::parse("{45000 ::1}").is_err());
    }

    #[test]
    fn tcl_ints() {
        assert_eq!(parse_tcl_int("45001"), Some(45001));
        assert_eq!(parse_tcl_int(" 0x10 "), Some(16));
        assert_eq!(parse_tcl_int("00"), Some(0));
        assert_eq!(parse_tcl_int("010"), Some(8));
        assert_eq!(parse_tcl_int("-1"), Some(-1));
        assert_eq!(parse_tcl_int(""), None);
        assert_eq!(parse_tcl_int("12a"), None);
        assert_eq!(parse_tcl_int("09"), None);
    }
}
