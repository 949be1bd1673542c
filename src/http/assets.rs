//! The page and its scripts, built into the binary so the daemon is one file.

use axum::http::header;
use axum::response::IntoResponse;

macro_rules! asset {
    ($name:ident, $file:literal, $mime:literal) => {
        pub async fn $name() -> impl IntoResponse {
            (
                [(header::CONTENT_TYPE, $mime), (header::CACHE_CONTROL, "no-cache")],
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/", $file)),
            )
        }
    };
}

asset!(index, "index.html", "text/html; charset=utf-8");
asset!(client_js, "robocast.js", "text/javascript; charset=utf-8");
// robocast.js imports its parts by relative URL, so they are served beside it.
asset!(client_channels_js, "robocast-channels.js", "text/javascript; charset=utf-8");
asset!(client_drive_js, "robocast-drive.js", "text/javascript; charset=utf-8");
asset!(client_talk_js, "robocast-talk.js", "text/javascript; charset=utf-8");
asset!(client_http_js, "robocast-http.js", "text/javascript; charset=utf-8");
asset!(client_input_js, "robocast-input.js", "text/javascript; charset=utf-8");
asset!(client_media_js, "robocast-media.js", "text/javascript; charset=utf-8");
asset!(app_js, "app.js", "text/javascript; charset=utf-8");
asset!(style_css, "style.css", "text/css; charset=utf-8");
asset!(favicon, "favicon.svg", "image/svg+xml");
