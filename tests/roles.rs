//! Tokens and roles on every endpoint: no token, a wrong token, the viewer's token where
//! the operator's is needed, and the right one, with real webrtc-rs sessions behind them.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Signalling, Viewer, ViewerOptions, http};
use serde_json::Value;

const T: Duration = Duration::from_secs(10);
const VIEWER_TOKEN: &str = "test-viewer-token-fedcba9876543210";
const VIEWER: &str = "Bearer test-viewer-token-fedcba9876543210";
const OPERATOR: &str = "Bearer test-operator-token-0123456789abcdef";
const WRONG: &str = "Bearer not-a-token-of-this-robot-000";
const NONE: &str = "";

async fn call(addr: SocketAddr, method: &str, path: &str, authorization: &str) -> http::Response {
    let headers = [("Authorization", authorization), ("Content-Type", "application/json")];
    http::request_with(addr, method, path, &headers, b"").await
}

/// The status and, for an error, that the body says what happened and what to do.
fn expect(response: &http::Response, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    if status >= 400 {
        let body = response.json();
        let (error, hint) = (body["error"].as_str().unwrap_or(""), body["hint"].as_str().unwrap_or(""));
        assert!(!error.is_empty() && !hint.is_empty(), "{what}: {body}");
    }
    if status == 401 {
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer realm=\"robocast\""), "{what}: {challenge}");
    }
    if status == 403 {
        assert!(response.json()["error"].as_str().unwrap_or("").contains("operator token"), "{what}");
    }
}

fn watching(authorization: &'static str) -> ViewerOptions {
    ViewerOptions { authorization: Some(authorization), ..ViewerOptions::undecoded() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_viewer_token_every_endpoint_asks_for_the_right_role() {
    let viewer_token = robocast::auth::Token::new(VIEWER_TOKEN).expect("token");
    let daemon = common::start_daemon(|c| c.viewer_token = Some(viewer_token)).await;
    let addr = daemon.local_addr();

    // Open to all: the page, its scripts, health.
    for path in ["/", "/robocast.js", "/healthz"] {
        expect(&call(addr, "GET", path, NONE).await, 200, path);
    }
    // Watching needs a token.
    for path in ["/api/status", "/api/config"] {
        expect(&call(addr, "GET", path, NONE).await, 401, &format!("{path} without a token"));
        expect(&call(addr, "GET", path, WRONG).await, 401, &format!("{path} with a wrong token"));
        expect(&call(addr, "GET", path, "Basic dXNlcjpwYXNz").await, 401, &format!("{path} with Basic"));
        expect(&call(addr, "GET", path, VIEWER).await, 200, &format!("{path} as a viewer"));
        expect(&call(addr, "GET", path, OPERATOR).await, 200, &format!("{path} as the operator"));
    }
    let wrong = call(addr, "GET", "/api/status", WRONG).await;
    assert!(wrong.header("www-authenticate").unwrap_or_default().contains("invalid_token"));
    assert_eq!(call(addr, "GET", "/api/config", VIEWER).await.json()["access"], "viewer");
    assert_eq!(call(addr, "GET", "/api/config", OPERATOR).await.json()["access"], "operator");
    // The operator's: the list of sessions, WHIP, the seats.
    expect(&call(addr, "GET", "/api/sessions", NONE).await, 401, "sessions without a token");
    expect(&call(addr, "GET", "/api/sessions", WRONG).await, 401, "sessions with a wrong token");
    expect(&call(addr, "GET", "/api/sessions", VIEWER).await, 403, "sessions as a viewer");
    expect(&call(addr, "GET", "/api/sessions", OPERATOR).await, 200, "sessions as the operator");
    expect(&call(addr, "POST", "/whip", NONE).await, 401, "WHIP without a token");
    expect(&call(addr, "POST", "/whip", VIEWER).await, 403, "WHIP as a viewer");
    // The operator's token gets past the door to the body's checks.
    expect(&call(addr, "POST", "/whip", OPERATOR).await, 415, "WHIP as the operator, JSON body");
    // Offers need a token before anything is read.
    let offer = http::request_with(
        addr,
        "POST",
        "/whep",
        &[("Authorization", NONE), ("Content-Type", "application/sdp")],
        b"v=0",
    )
    .await;
    expect(&offer, 401, "a WHEP offer without a token");

    // A session opened with the viewer's token watches, and cannot drive or talk.
    let viewer = Viewer::connect(addr, watching(VIEWER)).await;
    viewer.received.wait_frames(3, T).await;
    let session = viewer.session().to_owned();
    for seat in ["driver", "talker"] {
        let path = format!("/api/sessions/{session}/{seat}");
        expect(
            &call(addr, "POST", &path, VIEWER).await,
            403,
            &format!("{seat} seat asked with the viewer's token"),
        );
        let refused = call(addr, "POST", &path, OPERATOR).await;
        expect(&refused, 403, &format!("{seat} seat for a viewer's session"));
        assert!(refused.json()["error"].as_str().unwrap_or("").contains("only watches"), "{refused:?}");
    }
    // The operator's session drives.
    let operator = Viewer::connect(addr, watching(OPERATOR)).await;
    operator.received.wait_frames(3, T).await;
    let driver = format!("/api/sessions/{}/driver", operator.session());
    expect(&call(addr, "POST", &driver, OPERATOR).await, 200, "the operator's session drives");
    let listed = call(addr, "GET", "/api/sessions", OPERATOR).await.json();
    let access: Vec<(&str, &str)> = listed["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or(""), s["access"].as_str().unwrap_or("")))
        .collect();
    assert!(access.contains(&(session.as_str(), "viewer")), "{listed}");
    assert!(access.contains(&(operator.session(), "operator")), "{listed}");

    // A viewer cannot end the operator's session (whose id every page hears, as the
    // driver's), nor one it cannot know; it can end its own.
    let operators = format!("/api/sessions/{}", operator.session());
    expect(&call(addr, "DELETE", &operators, VIEWER).await, 403, "a viewer ends the operator's session");
    expect(&call(addr, "DELETE", &operators, NONE).await, 401, "no token ends the operator's session");
    let guessed = format!("/api/sessions/{}", "0".repeat(32));
    expect(&call(addr, "DELETE", &guessed, VIEWER).await, 404, "a viewer guesses a session");
    // Reading one session (the page reads its own link and tier) follows the same rules.
    expect(&call(addr, "GET", &operators, VIEWER).await, 403, "a viewer reads the operator's session");
    expect(&call(addr, "GET", &operators, NONE).await, 401, "no token reads the operator's session");
    expect(&call(addr, "GET", &guessed, VIEWER).await, 404, "a viewer reads a guessed session");
    let own = call(addr, "GET", &format!("/api/sessions/{session}"), VIEWER).await;
    expect(&own, 200, "a viewer reads its own session");
    let own = own.json();
    assert_eq!((own["id"].as_str(), own["tier"].as_u64()), (Some(session.as_str()), Some(0)), "{own}");
    assert!(own["link"]["target_bps"].as_u64().is_some_and(|b| b > 0), "{own}");
    expect(&call(addr, "GET", &operators, OPERATOR).await, 200, "the operator reads any session");
    expect(&call(addr, "DELETE", &viewer.location, VIEWER).await, 200, "a viewer ends its own session");
    // The operator may end anyone's.
    let other = Viewer::connect(addr, watching(VIEWER)).await;
    expect(
        &call(addr, "DELETE", &other.location, OPERATOR).await,
        200,
        "the operator ends a viewer's session",
    );
    // The operator's session was never touched.
    operator
        .received
        .wait_frames(operator.received.video_frames.load(std::sync::atomic::Ordering::Relaxed) + 10, T)
        .await;
    operator.close().await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_viewer_token_anyone_watches_and_only_the_operator_drives() {
    let daemon = common::start_daemon(|_| {}).await;
    let addr = daemon.local_addr();
    expect(&call(addr, "GET", "/api/status", NONE).await, 200, "status, open viewing");
    let config = call(addr, "GET", "/api/config", NONE).await.json();
    assert_eq!((config["access"].as_str(), config["viewing_open"].as_bool()), (Some("viewer"), Some(true)));
    // A wrong token is still an error: it is a mistake worth hearing about.
    expect(&call(addr, "GET", "/api/status", WRONG).await, 401, "status with a wrong token");
    expect(&call(addr, "GET", "/api/sessions", NONE).await, 403, "sessions, open viewing");

    // A watcher hears the robot on its channels, and what it sends is refused.
    let options = ViewerOptions { channels: &["state", "default", "control"], ..watching(NONE) };
    let watcher = Viewer::connect(addr, options).await;
    watcher.wait_open("state", T).await;
    watcher.wait_open("default", T).await;
    watcher.send("default", r#"{"kind":"ping"}"#).await;
    let refused = watcher.inbox.expect("state", T, |v| v["type"] == "error").await;
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains("only watches") && error.contains("operator token"), "{refused}");
    watcher.close().await;

    let anyone =
        Viewer::connect(addr, ViewerOptions { signalling: Signalling::Whep, ..watching(NONE) }).await;
    anyone.received.wait_frames(3, T).await;
    let seat = format!("/api/sessions/{}/driver", anyone.session());
    expect(&call(addr, "POST", &seat, NONE).await, 403, "the driver seat without a token");
    expect(
        &call(addr, "DELETE", &anyone.location, NONE).await,
        200,
        "an anonymous viewer ends its own session",
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_viewers_never_locks_the_operator_out() {
    let daemon = common::start_daemon(|c| c.max_viewers = 1).await;
    let addr = daemon.local_addr();
    let first = Viewer::connect(addr, watching(NONE)).await;
    let (_pc, sdp) = common::viewer::offer(&ViewerOptions::undecoded()).await;
    let post = async |authorization: &str| {
        let headers = [("Authorization", authorization), ("Content-Type", "application/sdp")];
        http::request_with(addr, "POST", "/whep", &headers, sdp.as_bytes()).await
    };
    let full = post(NONE).await;
    expect(&full, 503, "a second viewer over max_viewers = 1");
    assert!(full.json()["error"].as_str().unwrap_or("").contains("viewer limit"), "{full:?}");
    let operator = post(OPERATOR).await;
    assert_eq!(operator.status, 201, "the operator gets a reserved slot: {operator:?}");
    let sessions = call(addr, "GET", "/api/sessions", OPERATOR).await.json();
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(2), "{sessions}");
    let ids: Vec<&Value> = sessions["sessions"].as_array().expect("list").iter().map(|s| &s["id"]).collect();
    assert!(ids.iter().all(|id| id.as_str().is_some_and(|id| id.len() == 32)), "128-bit ids: {ids:?}");
    first.close().await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_credentials_are_minted_for_those_who_may_watch_and_expire() {
    const SECRET: &str = "north-wind-secret-42";
    let viewer_token = robocast::auth::Token::new(VIEWER_TOKEN).expect("token");
    let daemon = common::start_daemon(|c| {
        (c.video, c.audio) = ("none".into(), "test".into());
        c.viewer_token = Some(viewer_token);
        c.ice_servers = vec!["turn:turn.example:3478".into(), "stun:stun.example:3478".into()];
        c.turn_secret = Some(robocast::auth::Token::new(SECRET).expect("secret"));
    })
    .await;
    let addr = daemon.local_addr();
    let refused = call(addr, "GET", "/api/config", NONE).await;
    expect(&refused, 401, "the page's configuration without a token");
    assert!(!refused.body.contains("turn"), "{refused:?}");

    let config = call(addr, "GET", "/api/config", VIEWER).await;
    expect(&config, 200, "the page's configuration as a viewer");
    assert!(!config.body.contains(SECRET), "the shared secret never leaves: {config:?}");
    let servers = config.json()["ice_servers"].clone();
    let turn = &servers[0];
    assert_eq!(turn["urls"][0], "turn:turn.example:3478");
    let username = turn["username"].as_str().expect("a minted user name");
    let expires: u64 =
        username.strip_suffix(":robocast").and_then(|t| t.parse().ok()).expect("<expiry>:robocast");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let ttl = robocast::rtc::TURN_CREDENTIAL_TTL.as_secs();
    assert!((now + ttl - 60..=now + ttl + 60).contains(&expires), "expires {expires}, now {now}");
    let (_, credential) = robocast::rtc::turn_credentials(SECRET, expires);
    assert_eq!(turn["credential"].as_str(), Some(credential.as_str()), "coturn's HMAC-SHA1 of the user name");
    assert_eq!(servers[1].get("username"), None, "a STUN server takes no credentials: {servers}");
    daemon.shutdown().await;
}
