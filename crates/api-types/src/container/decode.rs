//! dockerd's decoding rules for request bodies: dockerd decodes them into Go structs, so a
//! value of the wrong JSON type (`"Memory": "1g"`, `"Env": {}`, a number that does not fit
//! an int64) is a 400 that names the field; a null is the zero value; a key the struct
//! does not have is ignored. berth decodes the same way, and also refuses by name a key it
//! does not honour unless it carries its zero value (clients send whole structs).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::config::{Config, HostConfig, UpdateConfig};
use super::unsupported::{self, Section};

/// Why a request body was refused (the API answers 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the {0} must be a JSON object")]
    NotAnObject(&'static str),
    /// A member of the wrong type or out of range; `field` is its path (`HostConfig.Memory`).
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// A member berth does not honour, asking for something (`HostConfig.Links`).
    #[error("{0} is not supported by berth yet")]
    Unsupported(String),
}

/// `v` without the object members that are null: Go's decoder leaves a field at its zero
/// value for a null, which serde's defaults give when the member is absent.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Decode `v` as `T` with Go's null rule; a mismatch is the member's path (empty for `v`
/// itself) and what was wrong. Every request body of the API is decoded through this.
pub(crate) fn go_decode<T: DeserializeOwned>(v: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(&without_nulls(v)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.inner().to_string())
    })
}

/// Decode `v` as `T` with Go's null rule; a mismatch names the field's path under `section`.
pub fn typed<T: DeserializeOwned>(section: &str, v: &Value) -> Result<T, DecodeError> {
    go_decode(v).map_err(|(path, message)| DecodeError::Invalid {
        field: if path.is_empty() {
            section.to_string()
        } else {
            format!("{section}.{path}")
        },
        message,
    })
}

/// `body` as an object, or the refusal naming `what` it should have been.
pub fn object<'a>(
    body: &'a Value,
    what: &'static str,
) -> Result<&'a Map<String, Value>, DecodeError> {
    body.as_object().ok_or(DecodeError::NotAnObject(what))
}

/// The body of `POST /containers/create`, checked for options berth does not honour and
/// typed.
pub fn create_request(body: &Value) -> Result<Config, DecodeError> {
    let obj = object(body, "body")?;
    unsupported::refuse(Section::Config, obj)?;
    match obj.get("HostConfig") {
        None | Some(Value::Null) => {}
        Some(host) => unsupported::refuse(Section::HostConfig, object(host, "HostConfig")?)?,
    }
    typed("Config", body)
}

/// The body of `POST /containers/{id}/update`, typed. Keys UpdateConfig does not have are
/// ignored, as dockerd's decoder ignores them.
pub fn update_config(body: &Value) -> Result<UpdateConfig, DecodeError> {
    object(body, "body")?;
    typed("update config", body)
}

/// A HostConfig as a container record keeps it (checked at create), typed again.
pub fn host_config(stored: &Value) -> Result<HostConfig, DecodeError> {
    typed("HostConfig", stored)
}

/// A serde `deserialize_with` for stored copies of these types (records written by older
/// versions hold the body as the client sent it, nulls included): Go's null rule applies,
/// to the whole value too. A member the older version kept untyped and that does not
/// decode (a zero of the wrong type, which it let through) is dropped rather than losing
/// the record.
pub fn with_nulls<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let mut v = match Value::deserialize(d)? {
        Value::Null => return Ok(T::default()),
        v => without_nulls(&v),
    };
    loop {
        let e = match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        let key = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
            _ => return Err(serde::de::Error::custom(e.inner())),
        };
        match v.as_object_mut().and_then(|o| o.remove(&key)) {
            Some(_) => {}
            None => return Err(serde::de::Error::custom(e.inner())),
        }
    }
}

pub use unsupported::is_zero;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::StrSlice;
    use serde_json::json;

    fn refused(body: Value) -> String {
        match create_request(&body) {
            Err(e) => e.to_string(),
            Ok(b) => panic!("{body} accepted as {b:?}"),
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (json!({"HostConfig": {"Memory": "1g"}}), "HostConfig.Memory"),
            (
                json!({"HostConfig": {"Memory": 9223372036854775808u64}}),
                "HostConfig.Memory",
            ),
            (
                json!({"HostConfig": {"Memory": 18446744073709551621.0}}),
                "HostConfig.Memory",
            ),
            (json!({"HostConfig": {"Memory": 1.5}}), "HostConfig.Memory"),
            (
                json!({"HostConfig": {"PidsLimit": 9223372036854775808u64}}),
                "HostConfig.PidsLimit",
            ),
            (
                json!({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 9223372036854775808u64, "Hard": 1}]}}),
                "HostConfig.Ulimits[0].Soft",
            ),
            (json!({"Env": {"A": "1"}}), "Config.Env"),
            (json!({"Cmd": 5}), "Config.Cmd"),
            (json!({"Labels": {"a": 1}}), "Config.Labels.a"),
            (
                json!({"Healthcheck": {"Test": "true"}}),
                "Config.Healthcheck.Test",
            ),
            (
                json!({"Healthcheck": {"Interval": "1s"}}),
                "Config.Healthcheck.Interval",
            ),
        ];
        for (body, field) in cases {
            let msg = refused(body.clone());
            assert!(
                msg.starts_with("invalid Config.") && msg.contains(&format!("{field}: ")),
                "{body}: {msg}"
            );
        }
    }

    #[test]
    fn nulls_zero_values_and_strings_as_lists_are_accepted() {
        let b = create_request(&json!({
            "Image": "x", "Cmd": "echo hi", "Entrypoint": null, "Hostname": null,
            "Volumes": null, "Domainname": "", "HostConfig": {"Memory": null, "CpuShares": 0,
            "Isolation": "", "MemorySwappiness": -1, "Devices": [], "Ulimits": null},
        }))
        .expect("accepted");
        assert_eq!(b.cmd, Some(StrSlice(vec!["echo hi".into()])));
        assert_eq!(b.entrypoint, None);
        assert_eq!(b.host_config.memory, 0);
        assert_eq!(b.host_config.memory_swappiness, Some(-1));
    }

    #[test]
    fn unsupported_keys_are_refused_by_name() {
        assert_eq!(
            refused(json!({"NetworkDisabled": true})),
            "Config.NetworkDisabled is not supported by berth yet"
        );
        assert_eq!(
            refused(json!({"HostConfig": {"Links": ["other"]}})),
            "HostConfig.Links is not supported by berth yet"
        );
        assert!(refused(json!({"HostConfig": {"BlkioWeight": 70000}}))
            .contains("HostConfig.BlkioWeight"));
        assert!(
            refused(json!({"HostConfig": {"Sysctls": {"kernel.sem": 1}}}))
                .contains("HostConfig.Sysctls.kernel.sem")
        );
        assert_eq!(
            refused(json!({"HostConfig": "x"})),
            "the HostConfig must be a JSON object"
        );
        assert_eq!(refused(json!([1])), "the body must be a JSON object");
    }

    /// A record's HostConfig as berthd before typed models stored it: the client's body,
    /// nulls and keys berth does not read included.
    #[test]
    fn stored_host_configs_of_older_records_decode() {
        #[derive(Deserialize)]
        struct Record {
            #[serde(default, deserialize_with = "with_nulls")]
            host_config: HostConfig,
        }
        let old = r#"{"host_config": {"Binds": null, "Memory": 67108864, "PidsLimit": null,
            "MemorySwappiness": -1, "KernelMemory": 0, "SomethingNew": {"x": 1},
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
            "BlkioWeightDevice": [], "ConsoleSize": [0, 0], "Init": null,
            "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": null}],
            "Links": 0, "Cgroup": false}}"#;
        let r: Record = serde_json::from_str(old).expect("old record");
        let h = r.host_config;
        assert_eq!(h.memory, 67108864);
        assert_eq!(h.pids_limit, None);
        assert_eq!(h.restart_policy.name, "always");
        assert!(h.binds.is_empty());
        assert!(h.blkio_weight_device.is_some_and(|d| d.is_empty()));
        assert!(h.blkio_device_read_bps.is_none());
        assert_eq!(h.mounts[0].target, "/t");
        let r: Record = serde_json::from_str(r#"{"host_config": null}"#).expect("null");
        assert_eq!(r.host_config.memory, 0);
        let r: Record = serde_json::from_str("{}").expect("absent");
        assert_eq!(r.host_config.network_mode, "");
    }

    #[test]
    fn update_configs_keep_given_and_absent_apart() {
        let u = update_config(&json!({"PidsLimit": null, "BlkioWeightDevice": [],
            "Memory": 1048576, "RestartPolicy": {"Name": "no"}}))
        .expect("update");
        assert_eq!(u.pids_limit, None);
        assert!(u.blkio_weight_device.is_some());
        assert!(u.blkio_device_write_bps.is_none());
        assert_eq!(u.memory, 1048576);
        assert_eq!(
            update_config(&json!({"Memory": "x"})).map(drop),
            Err(DecodeError::Invalid {
                field: "update config.Memory".into(),
                message: "invalid type: string \"x\", expected i64".into()
            })
        );
    }
}
