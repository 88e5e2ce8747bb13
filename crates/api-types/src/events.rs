//! moby's `api/types/events`: one message of `GET /events`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An event. `status`, `id` and `from` are the members of API < 1.22, which dockerd still
/// emits (omitted when empty) and the docker CLI still reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    /// The action again.
    #[serde(rename = "status", default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The actor's ID again.
    #[serde(rename = "id", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The actor's `image` attribute.
    #[serde(rename = "from", default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `container`, `image`, `network`, `volume`...
    pub r#type: String,
    /// `create`, `start`, `tag`, `exec_start: sh`...
    pub action: String,
    pub actor: Actor,
    /// `local` (or `swarm`).
    #[serde(rename = "scope", default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Unix seconds.
    #[serde(rename = "time", default, skip_serializing_if = "is_zero")]
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano", default, skip_serializing_if = "is_zero")]
    pub time_nano: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What the event is about: its ID and its attributes (name, image, labels, exitCode...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    pub attributes: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// swagger.yaml's EventMessage example plus the legacy members dockerd adds
    /// (events.Message's tags): status, id, from, then Type, Action, Actor, scope, time,
    /// timeNano.
    #[test]
    fn message_as_dockerd() {
        let m = Message {
            status: "create".into(),
            id: "ede54ee1afda".into(),
            from: "alpine".into(),
            r#type: "container".into(),
            action: "create".into(),
            actor: Actor {
                id: "ede54ee1afda".into(),
                attributes: BTreeMap::from([
                    ("image".into(), "alpine".into()),
                    ("name".into(), "my-container".into()),
                ]),
            },
            scope: "local".into(),
            time: 1461943101,
            time_nano: 1461943101381709551,
        };
        let v = serde_json::to_value(&m).expect("serializes");
        assert_eq!(
            v,
            json!({
                "status": "create", "id": "ede54ee1afda", "from": "alpine",
                "Type": "container", "Action": "create",
                "Actor": {"ID": "ede54ee1afda", "Attributes": {"image": "alpine", "name": "my-container"}},
                "scope": "local", "time": 1461943101, "timeNano": 1461943101381709551_i64
            })
        );
        // Members in events.Message's order.
        let text = serde_json::to_string(&m).expect("serializes");
        let at = |k: &str| text.find(&format!("\"{k}\":")).expect("member");
        let order = [
            "status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano",
        ];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        // An event of an actor with no image: no `from` (omitempty), Attributes still {}.
        let bare = serde_json::to_value(Message {
            r#type: "network".into(),
            action: "create".into(),
            ..Message::default()
        })
        .expect("serializes");
        assert!(bare.get("from").is_none());
        assert_eq!(bare["Actor"], json!({"ID": "", "Attributes": {}}));
    }
}
