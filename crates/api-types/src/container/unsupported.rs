//! Which fields of moby's Config and HostConfig berth does not honour yet, and the values
//! of them that ask for nothing (zero values, and the defaults clients spell out). Such a
//! field with any other value is refused by name; a field moby does not have is ignored, as
//! dockerd's decoder ignores it; and the fields dockerd itself ignores on Linux are too.

use serde_json::{Map, Value};

use super::decode::DecodeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Config,
    HostConfig,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Config => "Config",
            Section::HostConfig => "HostConfig",
        }
    }

    /// moby's fields of this section that berth does not honour yet.
    fn unsupported(self) -> &'static [&'static str] {
        match self {
            Section::Config => &["NetworkDisabled"],
            Section::HostConfig => &[
                "Cgroup",
                "Links",
                "StorageOpt",
                "UsernsMode",
                "Isolation",
                "DeviceRequests",
            ],
        }
    }
}

/// Fields that are maps keyed by what they ask for (`{"/data": {}}` asks for a volume).
const KEYED_MAPS: [&str; 1] = ["StorageOpt"];

/// A JSON value that says nothing (what the docker CLI sends for options left alone).
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_zero),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// Whether `value` of field `key` asks for nothing berth does not do.
fn asks_nothing(key: &str, value: &Value) -> bool {
    if KEYED_MAPS.contains(&key) {
        return value.as_object().is_none_or(Map::is_empty);
    }
    if is_zero(value) {
        return true;
    }
    match key {
        // Docker's defaults, which berth's containers have.
        "Isolation" => value == "default",
        // berth's containers share the host's user namespace.
        "UsernsMode" => value == "host",
        _ => false,
    }
}

/// Refuse every field of `section` that berth does not honour and that asks for something.
pub(crate) fn refuse(section: Section, obj: &Map<String, Value>) -> Result<(), DecodeError> {
    for (key, value) in obj {
        if section.unsupported().contains(&key.as_str()) && !asks_nothing(key, value) {
            return Err(DecodeError::Unsupported(format!(
                "{}.{key}",
                section.name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(section: Section, v: Value) -> bool {
        refuse(section, v.as_object().expect("object")).is_err()
    }

    #[test]
    fn asking_fields_are_refused_and_defaults_pass() {
        assert!(refused(Section::Config, json!({"NetworkDisabled": true})));
        for v in [
            json!({"Isolation": "hyperv"}),
            json!({"UsernsMode": "private"}),
            json!({"Links": ["db:db"]}),
        ] {
            assert!(refused(Section::HostConfig, v.clone()), "{v}");
        }
        assert!(!refused(
            Section::Config,
            json!({"Volumes": {}, "ExposedPorts": null, "Healthcheck": {"Test": ["CMD", "true"]},
                   "AttachStdin": true, "ArgsEscaped": true, "OnBuild": ["RUN x"], "Runtime": "x"})
        ));
        assert!(!refused(
            Section::HostConfig,
            json!({"Isolation": "default", "UsernsMode": "host", "Links": [], "RestartPolicy": {"Name": ""},
                   "ContainerIDFile": "/tmp/cid", "KernelMemory": 1048576, "SomethingNew": 1})
        ));
    }
}
