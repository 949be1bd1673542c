//! A session's data channels, wired to its [`Member`] of the control hub: what a channel
//! receives goes to the hub; what the hub puts in the session's outbox is sent on the
//! channel it names, in order, by one writer task per session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::peer_connection::RTCPeerConnection;

use crate::control::{Member, Outgoing, Payload};

type Open = Arc<Mutex<HashMap<String, Arc<RTCDataChannel>>>>;

/// Hands the browser's data channels to `member` and starts the writer for `outbox`.
pub(crate) fn wire(
    pc: &RTCPeerConnection,
    member: Member,
    outbox: mpsc::Receiver<Outgoing>,
    cancel: CancellationToken,
) {
    let open: Open = Arc::default();
    let span = tracing::Span::current();
    {
        let open = Arc::clone(&open);
        pc.on_data_channel(Box::new(move |channel: Arc<RTCDataChannel>| {
            adopt(channel, member.clone(), Arc::clone(&open));
            Box::pin(async {})
        }));
    }
    tokio::spawn(write(outbox, open, cancel).instrument(span));
}

fn adopt(channel: Arc<RTCDataChannel>, member: Member, open: Open) {
    let label = channel.label().to_owned();
    tracing::debug!(%label, "data channel");
    {
        let (member, open, label, this) =
            (member.clone(), Arc::clone(&open), label.clone(), Arc::clone(&channel));
        channel.on_open(Box::new(move || {
            Box::pin(async move {
                open.lock().unwrap_or_else(PoisonError::into_inner).insert(label.clone(), this);
                member.channel_open(&label).await;
            })
        }));
    }
    {
        let (member, label) = (member.clone(), label.clone());
        channel.on_message(Box::new(move |message: DataChannelMessage| {
            let (member, label) = (member.clone(), label.clone());
            Box::pin(async move {
                let payload = if message.is_string {
                    match String::from_utf8(message.data.to_vec()) {
                        Ok(text) => Payload::Text(text),
                        Err(_) => Payload::Binary(message.data.len()),
                    }
                } else {
                    Payload::Binary(message.data.len())
                };
                member.message(&label, payload).await;
            })
        }));
    }
    {
        let (member, open, label) = (member.clone(), Arc::clone(&open), label.clone());
        // webrtc-rs ends a channel whose message is over its 64 KiB read buffer with an
        // error, not a close.
        channel.on_error(Box::new(move |error| {
            let (member, open, label) = (member.clone(), Arc::clone(&open), label.clone());
            Box::pin(async move {
                open.lock().unwrap_or_else(PoisonError::into_inner).remove(&label);
                member.channel_failed(&label, &error.to_string()).await;
            })
        }));
    }
    channel.on_close(Box::new(move || {
        let (member, open, label) = (member.clone(), Arc::clone(&open), label.clone());
        Box::pin(async move {
            open.lock().unwrap_or_else(PoisonError::into_inner).remove(&label);
            member.channel_closed(&label).await;
        })
    }));
}

/// Sends the outbox's messages on their channels until the session ends.
async fn write(mut outbox: mpsc::Receiver<Outgoing>, open: Open, cancel: CancellationToken) {
    loop {
        let outgoing = tokio::select! {
            () = cancel.cancelled() => return,
            outgoing = outbox.recv() => match outgoing {
                Some(outgoing) => outgoing,
                None => return,
            },
        };
        let channel = open.lock().unwrap_or_else(PoisonError::into_inner).get(&*outgoing.channel).cloned();
        let Some(channel) = channel else { continue };
        if let Err(e) = channel.send_text(outgoing.text.to_string()).await {
            tracing::debug!(channel = %outgoing.channel, error = %e, "data channel send");
        }
    }
}
