//! The web dashboard, built into the binary: one HTML page, its script and
//! styles, and the vendored chart library (uPlot, from npm; see
//! `dashboard/web/vendor/README.md`). No CDN, nothing fetched at run time.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");
const UPLOT_JS: &str = include_str!("../web/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../web/vendor/uPlot.min.css");

fn asset(content_type: &'static str, body: &'static str, cache: &'static str) -> impl IntoResponse + Clone {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], body)
}

pub fn routes() -> Router {
    let html = "text/html; charset=utf-8";
    let js = "text/javascript; charset=utf-8";
    let css = "text/css; charset=utf-8";
    Router::new()
        .route("/", get(move || async move { asset(html, INDEX, "no-cache") }))
        .route("/assets/app.js", get(move || async move { asset(js, APP_JS, "no-cache") }))
        .route("/assets/app.css", get(move || async move { asset(css, APP_CSS, "no-cache") }))
        .route("/assets/vendor/uPlot.iife.min.js", get(move || async move { asset(js, UPLOT_JS, "max-age=86400") }))
        .route("/assets/vendor/uPlot.min.css", get(move || async move { asset(css, UPLOT_CSS, "max-age=86400") }))
}
