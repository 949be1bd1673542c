//! A user's mouse and keyboard on a page, as Chromium's input events (CDP `Input.*`), so
//! the page sees trusted events: focus moves, default actions happen.

use anyhow::{Context as _, Result};
use serde_json::json;

use super::browser::Page;

/// A left click in the middle of the element with the id `id`, scrolled into view first
/// if it is not (as a user would).
pub async fn click(page: &Page, id: &str) -> Result<()> {
    let at = page
        .eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); e.scrollIntoView({{ block: 'nearest' }}); \
             const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ))
        .await?;
    let (x, y) = (at[0].as_f64().context("no x")?, at[1].as_f64().context("no y")?);
    for kind in ["mousePressed", "mouseReleased"] {
        let event = json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 });
        page.call("Input.dispatchMouseEvent", event).await?;
    }
    Ok(())
}

/// The left mouse button going down (`down`) or up in the middle of the element with the
/// id `id`: a press held as long as the test likes (hold-to-talk).
pub async fn mouse_button(page: &Page, id: &str, down: bool) -> Result<()> {
    let at = page
        .eval(&format!(
            "(() => {{ const r = document.getElementById('{id}').getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ))
        .await?;
    let (x, y) = (at[0].as_f64().context("no x")?, at[1].as_f64().context("no y")?);
    let kind = if down { "mousePressed" } else { "mouseReleased" };
    let event = json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 });
    page.call("Input.dispatchMouseEvent", event).await?;
    Ok(())
}

/// A key going down (`down`) or up, as the keyboard sends it: `key` and `code` are the
/// same for the keys used here (arrows), `vk` is its Windows virtual key code.
pub async fn key(page: &Page, name: &str, vk: u32, down: bool) -> Result<()> {
    let kind = if down { "rawKeyDown" } else { "keyUp" };
    let event = json!({ "type": kind, "key": name, "code": name, "windowsVirtualKeyCode": vk });
    page.call("Input.dispatchKeyEvent", event).await?;
    Ok(())
}

/// A printable key pressed and released (a page's shortcuts).
pub async fn type_key(page: &Page, letter: char) -> Result<()> {
    let code = format!("Key{}", letter.to_ascii_uppercase());
    let vk = u32::from(letter.to_ascii_uppercase());
    let text = letter.to_string();
    let down =
        json!({ "type": "keyDown", "key": text, "code": code, "text": text, "windowsVirtualKeyCode": vk });
    page.call("Input.dispatchKeyEvent", down).await?;
    let up = json!({ "type": "keyUp", "key": text, "code": code, "windowsVirtualKeyCode": vk });
    page.call("Input.dispatchKeyEvent", up).await?;
    Ok(())
}
