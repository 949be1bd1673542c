//! Minted TURN credentials against a real TURN server: coturn (Debian package `coturn`)
//! with `use-auth-secret`, on loopback. A webrtc-rs viewer that may only use relayed
//! candidates takes the ICE servers from `/api/config`, as the page does, and receives the
//! robot's video through coturn; a made-up password is refused by coturn.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use tokio::process::Command;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;

const SECRET: &str = "turn-shared-secret-for-the-test";
const TURNSERVER: &str = "/usr/bin/turnserver";

/// coturn on 127.0.0.1:`port`, checking TURN REST credentials made with [`SECRET`].
async fn coturn(port: u16) -> Result<tokio::process::Child> {
    if !std::path::Path::new(TURNSERVER).exists() {
        bail!("{TURNSERVER} not found: install the Debian package coturn (make setup-test does it)");
    }
    let child = Command::new(TURNSERVER)
        .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--simple-log", "--log-file=stdout"])
        .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers"])
        .arg(format!("--listening-port={port}"))
        .args(["--min-port=49160", "--max-port=49200", "--realm=robocast.test", "--use-auth-secret"])
        .arg(format!("--static-auth-secret={SECRET}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting coturn")?;
    // Ready when it answers on its port (a STUN binding request gets a response).
    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let binding = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    let mut buf = [0u8; 512];
    for _ in 0..100 {
        probe.send_to(&binding, ("127.0.0.1", port)).await?;
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(100), probe.recv_from(&mut buf)).await {
            return Ok(child);
        }
    }
    bail!("coturn did not answer on 127.0.0.1:{port} within 10 s")
}

/// A relay-only viewer with `servers`; the video RTP packets it has received.
async fn relayed_viewer(
    addr: std::net::SocketAddr,
    servers: Vec<RTCIceServer>,
) -> Result<(Arc<webrtc::peer_connection::RTCPeerConnection>, tokio::sync::watch::Receiver<u64>)> {
    let configuration = RTCConfiguration {
        ice_servers: servers,
        ice_transport_policy: RTCIceTransportPolicy::Relay,
        ..Default::default()
    };
    let codecs =
        [(webrtc::api::media_engine::MIME_TYPE_H264, 102, common::viewer::BROWSER_H264, RTPCodecType::Video)];
    let pc = common::viewer::loopback_peer_with(&codecs, configuration).await;
    let init =
        RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, send_encodings: vec![] };
    pc.add_transceiver_from_kind(RTPCodecType::Video, Some(init)).await?;
    let (counted, packets) = tokio::sync::watch::channel(0u64);
    let counted = Arc::new(counted);
    pc.on_track(Box::new(move |track, _, _| {
        let counted = Arc::clone(&counted);
        tokio::spawn(async move {
            while track.read_rtp().await.is_ok() {
                counted.send_modify(|n| *n += 1);
            }
        });
        Box::pin(async {})
    }));
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    let _ = gathered.recv().await;
    let sdp = pc.local_description().await.context("no local description")?.sdp;
    if !sdp.contains("typ relay") {
        bail!("no relayed candidate was gathered from coturn:\n{sdp}");
    }
    let answer = common::http::post(addr, "/api/connect", "application/sdp", sdp.as_bytes()).await;
    if answer.status != 201 {
        bail!("the offer was refused: {answer:?}");
    }
    pc.set_remote_description(RTCSessionDescription::answer(answer.body)?).await?;
    Ok((pc, packets))
}

fn servers_of(config: &Value) -> Vec<RTCIceServer> {
    config["ice_servers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| RTCIceServer {
            urls: s["urls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect(),
            username: s["username"].as_str().unwrap_or_default().to_owned(),
            credential: s["credential"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_credentials_relay_the_robots_video_through_coturn() -> Result<()> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let _coturn = coturn(port).await?;
    let daemon = common::start_daemon(move |c| {
        c.audio = "none".into();
        c.ice_servers = vec![format!("turn:127.0.0.1:{port}")];
        c.turn_secret = Some(robocast::auth::Token::new(SECRET).expect("secret"));
    })
    .await;
    let addr = daemon.local_addr();
    let config = common::http::get(addr, "/api/config").await.json();
    let servers = servers_of(&config);
    assert!(servers[0].username.ends_with(":robocast"), "{config}");

    let (pc, mut packets) = relayed_viewer(addr, servers.clone()).await?;
    let arrived = tokio::time::timeout(Duration::from_secs(15), packets.wait_for(|n| *n >= 100))
        .await
        .is_ok_and(|r| r.is_ok());
    if !arrived {
        bail!(
            "{} video packets through coturn within 15 s (state {:?})",
            *packets.borrow(),
            pc.connection_state()
        );
    }
    assert_eq!(pc.connection_state(), RTCPeerConnectionState::Connected);
    pc.close().await?;

    // The same server with a password robocast did not mint: coturn refuses to allocate.
    let mut forged = servers;
    forged[0].credential = "bm90IGEgbWludGVkIHBhc3N3b3Jk".into();
    match relayed_viewer(addr, forged).await {
        Err(e) if e.to_string().contains("no relayed candidate") => {}
        Err(e) => bail!("a forged password failed otherwise than expected: {e:#}"),
        Ok((pc, _)) => {
            pc.close().await?;
            bail!("coturn relayed with a password robocast did not mint");
        }
    }
    daemon.shutdown().await;
    Ok(())
}
