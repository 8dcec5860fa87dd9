//! Reading a peer's id from the command line.

use tclcomm::Id;

/// Parses `PORT`, `HOST:PORT` (`[v6addr]:PORT` for IPv6) or comm's own
/// form `"PORT HOST"` (a Tcl list) into an [`Id`].
///
/// `PORT` alone means 127.0.0.1, as in comm. The id's text is what the peer
/// is known as locally, so `PORT` and `PORT 127.0.0.1` are different
/// connections to the same place (comm compares ids as strings); for a
/// one-shot command that makes no difference.
pub(crate) fn parse_id(text: &str) -> Result<Id, String> {
    let bad = |why: &str| {
        format!("invalid ID \"{text}\": {why} (expected PORT, HOST:PORT or \"PORT HOST\")")
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    if trimmed.chars().any(char::is_whitespace) || trimmed.starts_with('{') {
        let words = tclcomm_wire::list::parse_list(trimmed).map_err(|e| bad(&e.to_string()))?;
        return match words.as_slice() {
            [port] => Ok(Id::port(port_number(port).map_err(|e| bad(&e))?)),
            [port, host] => {
                port_number(port).map_err(|e| bad(&e))?;
                if host.is_empty() {
                    return Err(bad("empty host"));
                }
                Ok(Id::with_host(port, host))
            }
            _ => Err(bad("a Tcl-form id has two words")),
        };
    }
    if let Some((host, port)) = trimmed.rsplit_once(':') {
        let port = port_number(port).map_err(|e| bad(&e))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        return Ok(Id::with_host(port.to_string(), host));
    }
    Ok(Id::port(port_number(trimmed).map_err(|e| bad(&e))?))
}

fn port_number(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) => Err("port 0 is anonymous; cannot connect".into()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("\"{text}\" is not a port number")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn forms() {
        assert_eq!(
            parse_id("4500").map(|i| i.to_string()),
            Ok("4500".to_string())
        );
        assert_eq!(
            parse_id("localhost:4500").map(|i| i.to_string()),
            Ok("4500 localhost".to_string())
        );
        assert_eq!(
            parse_id("[::1]:4500").map(|i| i.to_string()),
            Ok("4500 ::1".to_string())
        );
        assert_eq!(
            parse_id("4500 example.org").map(|i| i.to_string()),
            Ok("4500 example.org".to_string())
        );
        assert_eq!(
            parse_id("{4500}").map(|i| i.to_string()),
            Ok("4500".to_string())
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "", "x", "0", "70000", "host:", ":4500", "1 2 3", "{4500 ", "4500 {}",
        ] {
            assert!(parse_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
