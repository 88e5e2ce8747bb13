//! Signal names and numbers as `kill` accepts them: "TERM", "SIGTERM", "15", "SIGRTMIN+3".

use crate::error::{Error, Result};

/// Parse a signal; returns its number.
pub fn parse(s: &str) -> Result<i32> {
    let bad = || Error::InvalidSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = realtime(name) {
        return rt.ok_or_else(bad);
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| bad())
}

fn realtime(name: &str) -> Option<Option<i32>> {
    let (base, rest) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (libc::SIGRTMIN(), rest)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        (libc::SIGRTMAX(), rest)
    } else {
        return None;
    };
    let n = match rest {
        "" => base,
        _ => match rest.parse::<i32>() {
            Ok(off) => base + off,
            Err(_) => return Some(None),
        },
    };
    Some(
        (libc::SIGRTMIN()..=libc::SIGRTMAX())
            .contains(&n)
            .then_some(n),
    )
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").ok(), Some(9));
        assert_eq!(parse("SIGTERM").ok(), Some(15));
        assert_eq!(parse("term").ok(), Some(15));
        assert_eq!(parse("10").ok(), Some(10));
        assert_eq!(parse("SIGRTMIN+1").ok(), Some(libc::SIGRTMIN() + 1));
    }

    #[test]
    fn bad_signals() {
        for s in ["0", "-1", "999", "SIGBOGUS", "", "RTMIN+999"] {
            assert!(parse(s).is_err(), "{s} accepted");
        }
    }
}
