//! The commands on the publisher connection (publish, history reads), and what a Redis error
//! means to a caller.
//!
//! Publishes go through one multiplexed connection and history reads through another, many in
//! flight at once on each, every call bounded by
//! [`Settings::call_timeout`](super::config::Settings::call_timeout).

use std::sync::atomic::Ordering;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Value};

use super::config::Settings;
use super::envelope::{self, StreamState};
use super::shared::Shared;
use crate::backplane::error::{BackplaneError, ErrorKind};
use crate::backplane::transport::PageLimits;
use crate::id::EventId;

/// Opens a command connection (for publishes, or for history reads), which reconnects by itself.
pub(super) async fn connect(
    client: &Client,
    settings: &Settings,
) -> Result<ConnectionManager, BackplaneError> {
    tokio::time::timeout(
        settings.open_timeout(),
        client.get_connection_manager_with_config(manager_config(settings)),
    )
    .await
    .map_err(|_| BackplaneError::new(ErrorKind::Timeout))?
    .map_err(redis_error)
}

/// A command connection that connects on its first use, without any I/O now (it needs a Tokio
/// runtime, which the caller checked).
pub(super) fn connect_lazy(
    client: &Client,
    settings: &Settings,
) -> Result<ConnectionManager, BackplaneError> {
    client
        .get_connection_manager_lazy(manager_config(settings))
        .map_err(redis_error)
}

fn manager_config(settings: &Settings) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.command_timeout))
        // Fail fast while Redis is down: one quick retry, then the caller gets the error.
        .set_number_of_retries(1)
        .set_min_delay(settings.reconnect_min)
        .set_max_delay(settings.reconnect_max)
}

/// Connects the publisher and reader connections of a lazily built transport and loads the
/// scripts each runs, so that once this succeeds the transport is as if it had connected
/// eagerly. Bounded by [`Settings::call_timeout`](super::config::Settings::call_timeout).
pub(super) async fn warm_up(shared: &Shared) -> Result<(), RedisError> {
    let mut publisher = shared.publisher.clone();
    let mut reader = shared.reader.clone();
    let (publish, history) = (
        shared.scripts.publish.prepare_invoke(),
        shared.scripts.history.prepare_invoke(),
    );
    let load = async {
        tokio::try_join!(
            publish.load_async(&mut publisher),
            history.load_async(&mut reader)
        )
    };
    match tokio::time::timeout(shared.settings.call_timeout(), load).await {
        Ok(loaded) => loaded.map(drop),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "loading the scripts timed out",
        )
        .into()),
    }
}

/// Publishes an event with the publish script; returns its id.
pub(super) async fn publish(
    shared: &Shared,
    channel: &str,
    event: &str,
    data: &[u8],
) -> Result<EventId, BackplaneError> {
    let settings = &shared.settings;
    let mut con = shared.publisher.clone();
    let command = shared.scripts.publish_command(
        &shared.names,
        channel,
        (settings.history_len, settings.history_ttl_ms),
        event,
        data,
    );
    let script = &shared.scripts.publish;
    let reply = tokio::time::timeout(settings.call_timeout(), evalsha(script, &command, &mut con))
        .await
        .map_err(|_| BackplaneError::new(ErrorKind::Timeout))?
        .map_err(redis_error)?;
    let id = match &reply {
        Value::BulkString(id) => envelope::parse_id(id),
        Value::SimpleString(id) => envelope::parse_id(id.as_bytes()),
        _ => None,
    }
    .ok_or_else(|| {
        BackplaneError::with_source(ErrorKind::Protocol, format!("{reply:?} is not a stream id"))
    })?;
    shared.stats.published.fetch_add(1, Ordering::Relaxed);
    Ok(id)
}

/// Reads the state of `channel`'s stream and, with `page`, one page of its entries after an id.
///
/// Reads go through their own connection, so a slow read never delays a publish queued behind
/// it, and a burst of publishes never delays a resume.
pub(super) async fn read_stream(
    shared: &Shared,
    channel: &str,
    page: Option<(EventId, PageLimits)>,
) -> Result<Option<StreamState>, BackplaneError> {
    let mut con = shared.reader.clone();
    let mut invocation = shared.scripts.history.key(shared.names.stream(channel));
    match page {
        Some((after, limits)) => invocation
            .arg(after.to_string())
            .arg(limits.events)
            .arg(limits.bytes),
        None => invocation.arg("").arg(0).arg(0),
    };
    let value: Value = tokio::time::timeout(
        shared.settings.call_timeout(),
        invocation.invoke_async(&mut con),
    )
    .await
    .map_err(|_| BackplaneError::new(ErrorKind::Timeout))?
    .map_err(redis_error)?;
    let state = envelope::parse_history(value)
        .map_err(|reason| BackplaneError::with_source(ErrorKind::Protocol, reason))?;
    if let Some(state) = &state
        && state.malformed > 0
    {
        shared
            .stats
            .malformed
            .fetch_add(state.malformed, Ordering::Relaxed);
    }
    Ok(state)
}

/// Runs `command`, an `EVALSHA` of `script`; when the server does not know the script (it
/// restarted, or its scripts were flushed), loads it and runs the command once more, as
/// `ScriptInvocation::invoke_async` does.
async fn evalsha(
    script: &::redis::Script,
    command: &::redis::Cmd,
    con: &mut ConnectionManager,
) -> Result<Value, RedisError> {
    match command.query_async(con).await {
        Err(err)
            if err.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
        {
            script.prepare_invoke().load_async(con).await?;
            command.query_async(con).await
        }
        result => result,
    }
}

/// Maps a Redis error to the kind of failure it is.
pub(super) fn redis_error(err: RedisError) -> BackplaneError {
    use ::redis::{ErrorKind as Kind, ServerErrorKind as Server};
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            Kind::Server(
                Server::BusyLoading | Server::MasterDown | Server::TryAgain | Server::ClusterDown
            ) | Kind::ClusterConnectionNotFound
        )
    {
        ErrorKind::Unavailable
    } else if matches!(
        err.kind(),
        Kind::AuthenticationFailed | Kind::InvalidClientConfig | Kind::RESP3NotSupported
    ) {
        ErrorKind::Config
    } else {
        ErrorKind::Protocol
    };
    BackplaneError::with_source(kind, err)
}

/// Whether `err` means the connection it came from is gone.
pub(super) fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error() || err.is_unrecoverable_error() || err.is_connection_dropped()
}
