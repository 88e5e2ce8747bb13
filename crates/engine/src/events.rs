//! The event log of `docker events`: what happened to containers and images, kept for a
//! while (the newest 1024 events, for --since) and sent to every subscriber as it happens.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::sync::Mutex;

/// How many past events are kept for `--since`.
const KEPT: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `container` or `image`.
    pub kind: &'static str,
    /// `create`, `start`, `die`, `tag`, `delete`...
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    pub fn new(kind: &'static str, action: &str, id: &str) -> Event {
        let time_nano = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Event {
            kind,
            action: action.to_string(),
            id: id.to_string(),
            attributes: BTreeMap::new(),
            time_nano,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Event {
        self.attributes.insert(key.to_string(), value.into());
        self
    }
}

#[derive(Default)]
pub struct Events {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    past: VecDeque<Event>,
    subscribers: Vec<mpsc::Sender<Event>>,
}

impl Events {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish(&self, event: Event) {
        let mut state = self.lock();
        if state.past.len() == KEPT {
            state.past.pop_front();
        }
        state.past.push_back(event.clone());
        state.subscribers.retain(|s| s.send(event.clone()).is_ok());
    }

    /// The kept events, and every later one as it happens (nothing is lost in between).
    pub fn subscribe(&self) -> (Vec<Event>, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel();
        let mut state = self.lock();
        state.subscribers.push(tx);
        (state.past.iter().cloned().collect(), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_get_the_past_and_the_future() {
        let events = Events::default();
        events.publish(Event::new("image", "tag", "a"));
        let (past, rx) = events.subscribe();
        events.publish(Event::new("container", "start", "b").with("name", "web"));
        assert_eq!(past.len(), 1);
        let next = rx.try_recv().expect("live event");
        assert_eq!(next.action, "start");
        assert_eq!(next.attributes["name"], "web");
        drop(rx);
        // A gone subscriber is dropped on the next event.
        events.publish(Event::new("image", "delete", "c"));
        assert!(events.lock().subscribers.is_empty());
        for i in 0..2000 {
            events.publish(Event::new("image", "tag", &i.to_string()));
        }
        assert_eq!(events.lock().past.len(), KEPT);
    }
}
