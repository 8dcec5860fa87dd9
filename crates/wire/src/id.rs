//! comm ids: a port, or `{port host}`.

use crate::list;

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

impl std::str::FromStr for Id {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Id, Self::Err> {
        Ok(Id::from_text(s))
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
