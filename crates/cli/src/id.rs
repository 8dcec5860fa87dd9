//! Reading a peer's id from the command line.

use tclcomm::Id;

/// Parses `PORT`, `HOST:PORT` (`[v6addr]:PORT` for IPv6) or comm's own
/// form `"PORT HOST"` (a Tcl list) into an [`Id`] (see [`Id::parse`]).
///
/// `PORT` alone means 127.0.0.1, as in comm. The id's text is what the peer
/// is known as locally, so `PORT` and `PORT 127.0.0.1` are different
/// connections to the same place (comm compares ids as strings); for a
/// one-shot command that makes no difference. Port 0 (an anonymous id) is
/// refused: there is nothing to connect to.
pub(crate) fn parse_id(text: &str) -> Result<Id, String> {
    let id = Id::parse(text).map_err(|e| e.to_string())?;
    if id.is_anonymous() {
        return Err(format!(
            "invalid id \"{text}\": port 0 is anonymous; cannot connect"
        ));
    }
    Ok(id)
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
        assert_eq!(
            parse_id("4500 ::1").map(|i| i.to_string()),
            Ok("4500 ::1".to_string())
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "", "x", "0", "70000", "host:", ":4500", "1 2 3", "{4500 ", "4500 {}", "::1",
            "::1:4500", "[::1]", "0 ::1", "[::1]:0",
        ] {
            assert!(parse_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
