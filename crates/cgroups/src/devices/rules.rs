//! Device rules reduced as cgroup v1 applies them in order: a rule for every device ("a")
//! sets the default and forgets the exceptions; a rule that agrees with the default takes
//! access away from a matching exception; any other rule adds (or widens) an exception.

/// Which devices a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// r, w, m as bits in the kernel's BPF_DEVCG_ACC_* values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(pub u8);

impl Access {
    pub const MKNOD: u8 = 1;
    pub const READ: u8 = 2;
    pub const WRITE: u8 = 4;
    pub const ALL: Access = Access(Self::MKNOD | Self::READ | Self::WRITE);

    /// From "rwm" letters; None for anything else.
    pub fn parse(letters: &str) -> Option<Access> {
        let mut bits = 0;
        for c in letters.chars() {
            bits |= match c {
                'r' => Self::READ,
                'w' => Self::WRITE,
                'm' => Self::MKNOD,
                _ => return None,
            };
        }
        (bits != 0).then_some(Access(bits))
    }
}

/// One rule; `None` numbers match any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

/// The reduced rules: a default and exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    pub default_allow: bool,
    pub exceptions: Vec<DeviceRule>,
}

impl RuleSet {
    /// A new cgroup allows every device, as on v1 (the config starts with a deny-all rule
    /// when it wants a list of allowed devices).
    pub fn from_rules(rules: &[DeviceRule]) -> RuleSet {
        let mut set = RuleSet {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for rule in rules {
            set.apply(rule);
        }
        set
    }

    fn apply(&mut self, rule: &DeviceRule) {
        if rule.kind == DeviceKind::All {
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return;
        }
        let same =
            |e: &DeviceRule| e.kind == rule.kind && e.major == rule.major && e.minor == rule.minor;
        if rule.allow == self.default_allow {
            for e in self.exceptions.iter_mut().filter(|e| same(e)) {
                e.access.0 &= !rule.access.0;
            }
            self.exceptions.retain(|e| e.access.0 != 0);
        } else if let Some(e) = self.exceptions.iter_mut().find(|e| same(e)) {
            e.access.0 |= rule.access.0;
        } else {
            self.exceptions.push(*rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: Access::parse(access).expect("access"),
        }
    }

    #[test]
    fn v1_semantics() {
        use DeviceKind::*;
        let set = RuleSet::from_rules(&[
            rule(true, Char, Some(1), Some(3), "rw"),
            rule(false, All, None, None, "rwm"),
            rule(true, Char, Some(1), Some(3), "r"),
            rule(true, Char, Some(1), Some(3), "w"),
            rule(true, Char, Some(1), Some(5), "rwm"),
            rule(false, Char, Some(1), Some(5), "m"),
            rule(true, Block, None, None, "m"),
            rule(false, Block, None, None, "m"),
        ]);
        assert!(!set.default_allow);
        assert_eq!(
            set.exceptions,
            [
                rule(true, Char, Some(1), Some(3), "rw"),
                rule(true, Char, Some(1), Some(5), "rw"),
            ]
        );
        let open = RuleSet::from_rules(&[rule(false, Char, Some(10), Some(200), "rwm")]);
        assert!(open.default_allow);
        assert_eq!(open.exceptions.len(), 1);
    }
}
