//! runtime-spec spellings that oci-spec 0.10 does not parse. Its scheduler flags derive
//! their names from the Rust variants, so two of the spec's names are unknown to it:
//! `SCHED_FLAG_RESET_ON_FORK` (it wants `SCHED_RESET_ON_FORK`) and `SCHED_FLAG_DL_OVERRUN`
//! (`SCHED_FLAG_D_L_OVERRUN`). A document that fails to parse and has those flags is parsed
//! again with them renamed; every other document is parsed once, as before.

use serde::de::DeserializeOwned;
use serde_json::Value;

const RENAMED: [(&str, &str); 2] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// Parse `text`, whose scheduler flags (if any) are at the JSON pointer `flags`.
pub(crate) fn parse<T: DeserializeOwned>(text: &[u8], flags: &str) -> serde_json::Result<T> {
    let first = match serde_json::from_slice(text) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let Ok(mut doc) = serde_json::from_slice::<Value>(text) else {
        return Err(first);
    };
    let Some(list) = doc.pointer_mut(flags).and_then(Value::as_array_mut) else {
        return Err(first);
    };
    let mut renamed = false;
    for flag in list.iter_mut() {
        if let Some((_, ours)) = RENAMED.iter().find(|(spec, _)| flag == spec) {
            *flag = Value::from(*ours);
            renamed = true;
        }
    }
    match renamed {
        // Still wrong: the second error names what is (the first named a flag we know).
        true => serde_json::from_value(doc),
        false => Err(first),
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxSchedulerFlag, Process};

    #[test]
    fn the_specs_flag_names_parse() {
        let text = br#"{"cwd": "/", "user": {"uid": 0, "gid": 0}, "scheduler": {"policy": "SCHED_FIFO",
            "priority": 1, "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_RECLAIM"]}}"#;
        let p: Process = super::parse(text, "/scheduler/flags").expect("parsed");
        let flags = p.scheduler().as_ref().and_then(|s| s.flags().clone());
        assert_eq!(
            flags,
            Some(vec![
                LinuxSchedulerFlag::SchedResetOnFork,
                LinuxSchedulerFlag::SchedFlagDLOverrun,
                LinuxSchedulerFlag::SchedFlagReclaim
            ])
        );
        let bad =
            br#"{"cwd": "/", "user": {"uid": 0, "gid": 0}, "scheduler": {"policy": "SCHED_FIFO",
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_BOGUS"]}}"#;
        let err = super::parse::<Process>(bad, "/scheduler/flags").expect_err("bogus flag");
        assert!(err.to_string().contains("SCHED_FLAG_BOGUS"), "{err}");
    }
}
