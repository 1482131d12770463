//! The console's stylesheet and script, embedded in the binary and served
//! with a long cache lifetime under a name that changes with the content.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const CSS: &str = include_str!("../../assets/console.css");
pub const JS: &str = include_str!("../../assets/console.js");

/// A short fingerprint of the assets, in their URLs, so that a new binary
/// is never served an old cached file.
pub fn version() -> &'static str {
    static V: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        // FNV-1a over both files.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in CSS.bytes().chain(JS.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{:08x}", h as u32)
    });
    &V
}

pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.split_once('.').map(|(_, ext)| ext) {
        _ if file.starts_with("console-") && file.ends_with(".css") => {
            (CSS, "text/css; charset=utf-8")
        }
        _ if file.starts_with("console-") && file.ends_with(".js") => {
            (JS, "text/javascript; charset=utf-8")
        }
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let mut res = ([(header::CONTENT_TYPE, ty)], body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}
