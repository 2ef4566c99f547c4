//! The engine's event stream, narrowed to sandpit's sandboxes, so session
//! lists stay current without polling.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::{Stream, StreamExt as _};

use super::Engine;
use super::sandbox::sandbox_labels;

/// Something that happened to a sandbox container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxEvent {
    pub user: String,
    pub container_id: String,
    /// The engine's action: create, start, die, oom, stop, restart, destroy.
    pub action: String,
}

const WATCHED_ACTIONS: [&str; 7] = [
    "create", "start", "die", "oom", "stop", "restart", "destroy",
];

impl Engine {
    /// Events of every sandpit sandbox from the moment of this call on —
    /// including ones that happen before the stream is first polled.
    pub fn sandbox_events(
        &self,
    ) -> impl Stream<Item = anyhow::Result<SandboxEvent>> + Send + 'static {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!(
                    "{}={}",
                    sandbox_labels::KIND,
                    sandbox_labels::KIND_SANDBOX
                )],
            ),
            (
                "event".to_string(),
                WATCHED_ACTIONS.iter().map(|a| a.to_string()).collect(),
            ),
        ]);
        self.docker()
            .events(Some(
                EventsOptionsBuilder::new()
                    .since(&since)
                    .filters(&filters)
                    .build(),
            ))
            .map(|item| {
                let message = item.map_err(|err| {
                    anyhow::Error::new(err).context("the engine's event stream broke")
                })?;
                let actor = message.actor.unwrap_or_default();
                let attributes = actor.attributes.unwrap_or_default();
                Ok(SandboxEvent {
                    user: attributes
                        .get(sandbox_labels::USER)
                        .cloned()
                        .unwrap_or_default(),
                    container_id: actor.id.unwrap_or_default(),
                    action: message.action.unwrap_or_default(),
                })
            })
    }
}
