//! GetContainerEvents (the kubelet's evented PLEG): the engine's container events of pod
//! containers, as the CRI's created/started/stopped/deleted, each with its pod's status and
//! its containers' statuses at that moment.

use std::sync::Arc;

use k8s_cri::v1::{ContainerEventResponse, ContainerEventType};
use tokio::sync::mpsc;

use crate::Cri;

/// The CRI's event for an engine action (None: not one the CRI reports).
fn event_type(action: &str) -> Option<ContainerEventType> {
    match action {
        "create" => Some(ContainerEventType::ContainerCreatedEvent),
        "start" => Some(ContainerEventType::ContainerStartedEvent),
        "die" => Some(ContainerEventType::ContainerStoppedEvent),
        "destroy" => Some(ContainerEventType::ContainerDeletedEvent),
        _ => None,
    }
}

impl Cri {
    fn event_response(
        &self,
        event: &berth_engine::events::Event,
        kind: ContainerEventType,
        sandbox: &str,
    ) -> ContainerEventResponse {
        let statuses = self
            .containers
            .list()
            .iter()
            .filter(|c| c.sandbox == sandbox)
            .filter_map(|c| self.container_status(&c.id).ok())
            .collect();
        ContainerEventResponse {
            container_id: event.id.clone(),
            container_event_type: kind as i32,
            created_at: event.time_nano,
            pod_sandbox_status: self.pod_status(sandbox, false).ok().and_then(|s| s.status),
            containers_statuses: statuses,
        }
    }
}

/// Events from now on, until the receiver is dropped (checked at the next engine event).
pub(crate) fn subscribe(
    cri: Arc<Cri>,
) -> mpsc::Receiver<Result<ContainerEventResponse, tonic::Status>> {
    let (tx, rx) = mpsc::channel(64);
    let (_, engine_events) = cri.engine.events().subscribe();
    std::thread::spawn(move || {
        while let Ok(event) = engine_events.recv() {
            if event.kind != "container" {
                continue;
            }
            let (Some(kind), Some(sandbox)) = (
                event_type(&event.action),
                event.attributes.get("io.kubernetes.sandbox.id"),
            ) else {
                continue;
            };
            let response = cri.event_response(&event, kind, sandbox);
            if tx.blocking_send(Ok(response)).is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_actions_map_to_the_cris_events() {
        assert_eq!(
            event_type("die"),
            Some(ContainerEventType::ContainerStoppedEvent)
        );
        assert_eq!(
            event_type("destroy"),
            Some(ContainerEventType::ContainerDeletedEvent)
        );
        assert_eq!(event_type("attach"), None);
    }
}
