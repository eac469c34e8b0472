//! The log line of each core event (`Server::poll_event`). Credentials are
//! never logged: events carry usernames, not passwords or keys.

use crate::proto::turn::Event;

pub(super) fn log_event(ev: &Event) {
    match ev {
        Event::AllocationCreated {
            client,
            relay,
            username,
            lifetime,
        } => tracing::info!(
            client = %client.client, transport = ?client.transport, %relay, username = %username,
            lifetime_s = lifetime.as_secs(), "allocation created"
        ),
        Event::AllocationEnded {
            client,
            relay,
            username,
            reason,
            ..
        } => {
            tracing::info!(client = %client.client, %relay, username = %username, ?reason, "allocation ended")
        }
        Event::PeerDenied {
            client,
            peer,
            reason,
        } => {
            tracing::debug!(client = %client.client, %peer, %reason, "peer refused (403)")
        }
        Event::AuthFailed {
            client,
            username,
            reason,
        } => {
            tracing::debug!(client = %client.client, username = %username, %reason, "authentication failed (401)")
        }
    }
}
