//! The bytes between the socket and hyper: a request that is not valid HTTP/1.1 (a bad
//! request line, a header flood, a 70 kB URL) is refused by hyper itself, before any
//! handler runs, with a 400, 431 or 414 and an empty body. robocast's every error is JSON
//! `{"error", "hint"}`, so this writer gives those few responses the same body: it
//! recognises hyper's parse-error response (status 400/414/431, `content-length: 0`, at
//! the start of a write; robocast's own error responses always have a body) and rewrites
//! it. Everything else passes through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose parse-error responses carry JSON bodies.
pub struct JsonErrors<S> {
    inner: S,
    /// A rewritten response still to be written, and how much of it is.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonErrors<S> {
    pub fn new(inner: S) -> JsonErrors<S> {
        JsonErrors { inner, pending: Vec::new(), written: 0 }
    }
}

/// The JSON body for one of hyper's parse-error statuses.
fn body_for(status: &[u8]) -> Option<&'static str> {
    Some(match status {
        b"400" => {
            r#"{"error":"the request is not valid HTTP/1.1","hint":"send a request line (METHOD /path HTTP/1.1) and well-formed headers"}"#
        }
        b"414" => {
            r#"{"error":"the URL is too long","hint":"robocast's URLs are short, like /api/sessions/<id>"}"#
        }
        b"431" => {
            r#"{"error":"the request headers are too many or too large","hint":"send at most 100 headers of a few kilobytes"}"#
        }
        _ => return None,
    })
}

/// hyper's parse-error response with a JSON body, or `None` for any other bytes.
pub fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let status = head.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    let body = body_for(status)?;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let empty = b"\r\ncontent-length: 0\r\n";
    let at = head[..end].windows(empty.len()).position(|w| w.eq_ignore_ascii_case(empty))?;
    let mut out = Vec::with_capacity(head.len() + body.len() + 64);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(
        format!("\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len()).as_bytes(),
    );
    out.extend_from_slice(&head[at + empty.len()..end]);
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(&head[end..]);
    Some(out)
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Writes what is left of a rewritten response.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(rewritten) = rewrite(buf) {
            // Taken whole: the caller's bytes are accounted for, ours go out on the next
            // write, flush or shutdown.
            self.pending = rewritten;
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_responses_get_a_json_body_and_nothing_else_changes() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(head).expect("rewritten")).expect("text");
        let (head, body) = out.split_once("\r\n\r\n").expect("a head");
        assert!(
            head.starts_with("HTTP/1.1 431 ") && head.contains("content-type: application/json"),
            "{head}"
        );
        assert!(
            head.contains(&format!("content-length: {}", body.len())) && head.contains("date: x"),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert!(json["error"].as_str().is_some_and(|e| e.contains("headers")) && json["hint"].is_string());
        for other in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n{...}",
            b"{\"sdp\": \"v=0\\r\\n\"}",
        ] {
            assert_eq!(rewrite(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
