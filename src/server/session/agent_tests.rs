//! Agents on the server's side: `Agent` is answered with the plan of the
//! connection's own name, a change reaches it once, nothing else is asked
//! on it, and its idle timeout outlasts its keepalives.

use std::sync::Arc;

use super::*;
use crate::client::session::Event;
use crate::testing::clock::Clock;
use crate::testing::frames::{bytes, wp};
use crate::testing::pair::Pair;
use crate::testing::server::{drain_commands, sent_frames, welcomed};

const LAPTOP: &[u8] = b"[laptop]\npath /home\nwatch 2s\n";
const DESKTOP: &[u8] = b"[desktop]\npath /srv\nevery 1h\n";

#[test]
fn an_agent_gets_its_plan_then_each_change_once() {
    let now = Clock::new().now();
    let mut s = welcomed(SessionConfig::default(), now);
    assert!(!s.is_agent());
    // A change before it is an agent sends nothing.
    s.handle_plan(LAPTOP);
    assert_eq!(sent_frames(&mut s), vec![]);
    s.handle_input(now, &bytes(&[Frame::Agent { id: 1 }]));
    assert!(s.is_agent());
    assert_eq!(
        drain_commands(&mut s),
        vec![Command::FollowPlan {
            name: "laptop".into()
        }]
    );
    s.handle_completion(Completion::Plan {
        text: LAPTOP.to_vec(),
    });
    assert_eq!(
        sent_frames(&mut s),
        vec![Frame::Plan {
            text: LAPTOP.to_vec()
        }]
    );
    // The same plan again (another agent's change) sends nothing; a new
    // one goes out once; removal is an empty plan.
    s.handle_plan(LAPTOP);
    assert_eq!(sent_frames(&mut s), vec![]);
    let other = b"[laptop]\npath /home\nevery 1m\n".to_vec();
    s.handle_plan(&other);
    s.handle_plan(&other);
    assert_eq!(sent_frames(&mut s), vec![Frame::Plan { text: other }]);
    s.handle_plan(b"");
    assert_eq!(sent_frames(&mut s), vec![Frame::Plan { text: vec![] }]);
    // A keepalive is answered with the plan as it is, even unchanged.
    s.handle_input(now, &bytes(&[Frame::Agent { id: 2 }]));
    assert_eq!(
        drain_commands(&mut s),
        vec![Command::FollowPlan {
            name: "laptop".into()
        }]
    );
    s.handle_completion(Completion::Plan { text: vec![] });
    assert_eq!(sent_frames(&mut s), vec![Frame::Plan { text: vec![] }]);
}

#[test]
fn an_agent_connection_takes_no_other_request() {
    let now = Clock::new().now();
    let mut s = welcomed(SessionConfig::default(), now);
    s.handle_input(
        now,
        &bytes(&[
            Frame::Agent { id: 1 },
            Frame::List {
                id: 2,
                path: wp("x"),
            },
        ]),
    );
    assert!(s.is_closing());
    assert!(!s.is_agent());
    let frames = sent_frames(&mut s);
    assert!(
        matches!(&frames[..], [Frame::Error { code: ErrorCode::Unexpected, message }]
            if message.contains("agent connection")),
        "{frames:?}"
    );
    // Ids still increase.
    let mut s = welcomed(SessionConfig::default(), now);
    s.handle_input(
        now,
        &bytes(&[Frame::Agent { id: 3 }, Frame::Agent { id: 3 }]),
    );
    assert!(s.is_closing());
}

#[test]
fn an_agent_outlasts_a_short_idle_timeout_and_not_its_own() {
    let clock = Clock::new();
    let t0 = clock.now();
    let config = SessionConfig {
        idle_timeout: Some(Duration::from_secs(10)),
        ..SessionConfig::default()
    };
    let mut s = welcomed(config.clone(), t0);
    s.handle_input(t0, &bytes(&[Frame::Agent { id: 1 }]));
    assert_eq!(s.poll_timeout(), Some(t0 + proto::AGENT_IDLE));
    s.handle_timeout(t0 + Duration::from_secs(60));
    assert!(!s.is_closing(), "quiet between pings is not idle");
    s.handle_timeout(t0 + proto::AGENT_IDLE);
    assert!(s.is_closing(), "three pings missed: gone");
    // A connection that is not an agent keeps the short one.
    let mut s = welcomed(config, t0);
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert!(s.is_closing());
}

#[test]
fn a_paired_client_hears_its_own_plan_never_another_names() {
    let secrets = crate::auth::Secrets::parse(b"laptop:pw\ndesktop:pw2\n", [7; 32]).unwrap();
    let config = SessionConfig {
        secrets: Some(Arc::new(secrets)),
        ..SessionConfig::default()
    };
    let key = crate::auth::Key::from_secret(b"pw");
    let auth = crate::client::session::ClientAuth {
        key,
        nonce: [3; 32],
    };
    let clock = Clock::new();
    let mut p = Pair::on(&clock, config, [5; 32], "laptop", Some(auth));
    p.server
        .shell
        .plans
        .insert("laptop".into(), LAPTOP.to_vec());
    p.server
        .shell
        .plans
        .insert("desktop".into(), DESKTOP.to_vec());
    p.drive().unwrap();
    p.client.take_events();
    p.client.session.send_agent();
    p.drive().unwrap();
    assert_eq!(
        p.client.take_events(),
        vec![Event::Plan {
            text: LAPTOP.to_vec()
        }]
    );
    assert!(p.server.session.is_agent());
    assert!(p
        .server
        .shell
        .commands
        .iter()
        .all(|c| !matches!(c, Command::FollowPlan { name } if name != "laptop")));
    // A change the loop hands every agent reaches this one as its own.
    p.server.session.handle_plan(b"");
    p.drive().unwrap();
    assert_eq!(p.client.take_events(), vec![Event::Plan { text: vec![] }]);
    // The client refuses a plan it did not ask for on another connection.
    let mut q = Pair::new(SessionConfig::default(), "x");
    q.drive().unwrap();
    q.client.take_events();
    q.server.session.handle_completion(Completion::Plan {
        text: DESKTOP.to_vec(),
    });
    q.drive().unwrap();
    assert!(
        q.client.session.is_closed(),
        "a Plan on a connection that sent no Agent"
    );
}
