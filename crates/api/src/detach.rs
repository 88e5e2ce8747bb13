//! Docker's detach keys (`--detach-keys`, ctrl-p ctrl-q by default): parsed, and found in a
//! stream of input. The daemon watches for them in what clients send; the berth CLI does too,
//! so that it knows it detached rather than that the container ended.

#[derive(Debug, thiserror::Error)]
#[error("Invalid detach keys ({0}) provided")]
pub struct InvalidDetachKeys(String);

/// The detach keys: `ctrl-p,ctrl-q` by default (Docker's `--detach-keys` syntax).
pub fn parse(spec: Option<&str>) -> Result<Vec<u8>, InvalidDetachKeys> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or("ctrl-p,ctrl-q");
    spec.split(',')
        .map(|key| {
            let bad = || InvalidDetachKeys(spec.to_string());
            match key.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let b = c.as_bytes()[0].to_ascii_lowercase();
                    match b {
                        b'a'..=b'z' => Ok(b - b'a' + 1),
                        b'@' => Ok(0),
                        b'[' => Ok(27),
                        b'\\' => Ok(28),
                        b']' => Ok(29),
                        b'^' => Ok(30),
                        b'_' => Ok(31),
                        _ => Err(bad()),
                    }
                }
                None if key.len() == 1 => Ok(key.as_bytes()[0]),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Finds the detach sequence in the client's input: bytes that may begin it are held back
/// until it is clear whether they do.
pub struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    pub fn new(keys: Vec<u8>) -> DetachKeys {
        DetachKeys { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence was typed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // Not the sequence after all: the held bytes go through.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}
