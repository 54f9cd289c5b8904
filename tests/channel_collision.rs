//! Two event types that take one name in one domain are refused: a keyed event and an enum
//! stream of one name would share the channel of every key. In a test binary of its own: the
//! registry is the program's, and these types would make every other test's types' neighbours
//! collide.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::error::Error as _;

use statelesse::prelude::*;
use statelesse::registry::{self, ChannelCollision};
use statelesse::{ErrorKind, RedisConfig};
use statelesse_test_redis::RedisServer;

/// Keyed by user: `ops:{user}:Maintenance`.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "ops", key = "user")]
struct Maintenance {
    user: String,
}

/// A stream keyed by user, named like the keyed event: `ops:{user}:Maintenance` too.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "ops", key = "user", name = "Maintenance")]
enum OpsEvent {
    Started { user: String },
}

/// Another type of the domain, of a name of its own.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "ops", key = "user")]
struct Outage {
    user: String,
}

fn maintenance() -> Maintenance {
    Maintenance {
        user: "alice".into(),
    }
}

/// The collision carried by `err`, after checking its kind.
fn collision_of(err: &statelesse::BackplaneError) -> &ChannelCollision {
    assert_eq!(err.kind(), ErrorKind::ChannelCollision, "{err:?}");
    err.source()
        .unwrap()
        .downcast_ref::<ChannelCollision>()
        .unwrap()
}

fn assert_names_both_types(collision: &ChannelCollision) {
    assert_eq!((collision.domain, collision.name), ("ops", "Maintenance"));
    let mut types = [collision.first, collision.second];
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "channel_collision::Maintenance",
            "channel_collision::OpsEvent"
        ]
    );
    let message = collision.to_string();
    assert!(message.contains("#[sse(name = \"...\")]"), "{message}");
}

#[test]
fn the_registry_reports_the_two_types_of_one_name_in_one_domain() {
    let collisions = registry::collisions();
    assert_eq!(collisions.len(), 1, "{collisions:?}");
    assert_names_both_types(&collisions[0]);
    assert_eq!(registry::check_unique_names(), Err(collisions[0].clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_backplane_refuses_to_start() {
    let server = RedisServer::start();
    let err = Backplane::redis(RedisConfig::new(&server.url()).unwrap())
        .await
        .unwrap_err();
    assert_names_both_types(collision_of(&err));
}

#[tokio::test]
async fn a_lazily_started_redis_backplane_refuses_to_start() {
    // Nothing listens on this port: the refusal comes before any connection is tried.
    let url = format!("redis://127.0.0.1:{}/", statelesse_test_redis::free_port());
    let err = Backplane::redis_lazy(RedisConfig::new(&url).unwrap()).unwrap_err();
    assert_names_both_types(collision_of(&err));
}

#[tokio::test]
async fn every_operation_on_a_colliding_type_fails_on_a_backplane_that_cannot_refuse_to_start() {
    let bp = Backplane::in_memory();
    let keyed = Maintenance::channel(&"alice".to_owned());
    let stream = OpsEvent::channel(&"alice".to_owned());

    let err = bp.publish(&maintenance()).await.unwrap_err();
    assert_names_both_types(collision_of(&err));
    assert_eq!(err.channel(), Some("ops:alice:Maintenance"));
    let err = bp
        .publish_to(std::slice::from_ref(&keyed), &maintenance())
        .await
        .unwrap_err();
    collision_of(&err);
    collision_of(&bp.subscribe(&keyed).await.unwrap_err());
    collision_of(&bp.subscribe_after(&stream, None).await.unwrap_err());
    collision_of(&bp.history(&keyed, None).await.unwrap_err());
    collision_of(&bp.history(&stream, None).await.unwrap_err());
    let started = OpsEvent::Started {
        user: "alice".into(),
    };
    collision_of(&bp.publish(&started).await.unwrap_err());
}

#[tokio::test]
async fn a_type_of_a_name_of_its_own_still_works() {
    let bp = Backplane::in_memory();
    let mut outages = Outage::stream(&bp, &"alice".to_owned()).await.unwrap();
    let outage = Outage {
        user: "alice".into(),
    };
    let id = bp.publish(&outage).await.unwrap();
    assert_eq!(outages.next().await.unwrap().unwrap().id, id);
}
