//! The editor in a browser (wasm32): the page fetches the model files served
//! beside it (listed in `models/files.json` by `tools/build-web.sh`), hands
//! them to the loaders in memory (`io::preloaded`: the same format and
//! SHA-256 checks as on the desktop) and starts the same [`EditorApp`] on the
//! page's canvas. The face is computed on the page's WebGPU device where it
//! has one, else (WebGL2: no compute) on the CPU, which the status bar says.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{EditorApp, Settings};

/// Where the fetched model files are registered (a path no disk has).
const SERVED: &str = "/served";

/// `models/files.json`: the files to fetch, relative to `models/`.
#[derive(Deserialize)]
struct FileList {
    /// The model folder among them (e.g. `dcgan-digiface64`).
    model: String,
    /// Each file with its size in bytes (for the progress line).
    files: Vec<ServedFile>,
}

#[derive(Deserialize)]
struct ServedFile {
    path: String,
    bytes: u64,
}

/// Entry point, called by the JS glue once the module is loaded.
#[wasm_bindgen(start)]
pub fn start() {
    wasm_bindgen_futures::spawn_local(async {
        if let Err(e) = run().await {
            say(&format!("plugen cannot start: {e}"));
        }
    });
}

async fn run() -> Result<(), String> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let list: FileList = serde_json::from_slice(&fetch("models/files.json").await?)
        .map_err(|e| format!("models/files.json: {e}"))?;
    let total: u64 = list.files.iter().map(|f| f.bytes).sum();
    let mut done = 0;
    for file in &list.files {
        say(&format!(
            "loading the model: {} ({:.1} of {:.1} MB)",
            file.path,
            done as f64 / 1e6,
            total as f64 / 1e6
        ));
        let bytes = fetch(&format!("models/{}", file.path)).await?;
        done += bytes.len() as u64;
        plugen_core::io::preloaded::insert(&Path::new(SERVED).join(&file.path), bytes);
    }
    say("starting the editor…");
    let canvas = document
        .get_element_by_id("plugen")
        .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        .ok_or("the page has no <canvas id=\"plugen\">")?;
    let model_dir = PathBuf::from(SERVED).join(&list.model);
    let options = eframe::WebOptions {
        wgpu_options: super::wgpu_options(),
        ..Default::default()
    };
    eframe::WebRunner::new()
        .start(
            canvas,
            options,
            Box::new(move |cc| {
                let settings: Settings = cc
                    .storage
                    .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                    .unwrap_or_default();
                if let Some(r) = cc.wgpu_render_state.as_ref().filter(|_| wants_self_test()) {
                    self_test(r, &model_dir);
                }
                let ctx = cc.egui_ctx.clone();
                let app = EditorApp::with_renderer(
                    Some(&model_dir),
                    None,
                    plugen_core::DeviceChoice::Wgpu,
                    settings,
                    cc.wgpu_render_state.as_ref(),
                    move || ctx.request_repaint(),
                )
                .map_err(|e| {
                    say(&format!("plugen cannot start: {e}"));
                    e.to_string()
                })?;
                say("");
                Ok(Box::new(app) as Box<dyn eframe::App>)
            }),
        )
        .await
        .map_err(|e| format!("{e:?}"))
}

/// Whether the page was opened with `?selftest`.
fn wants_self_test() -> bool {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .is_some_and(|q| q.contains("selftest"))
}

/// Checks plugen's WGSL flow and generator on the page's device against the
/// CPU engine (`jobs::parity`, read back asynchronously) and says the result
/// on the console as `plugen self-test: passed|FAILED: …`.
fn self_test(render: &eframe::egui_wgpu::RenderState, model_dir: &Path) {
    use plugen_core::compute::device::Compute;
    use plugen_core::compute::gpu::GpuContext;
    use plugen_core::jobs::parity;
    let started = (|| {
        let ctx =
            GpuContext::from_device(&render.adapter, render.device.clone(), render.queue.clone())?;
        let cpu = plugen_core::Model::load_on(
            Some(model_dir),
            plugen_core::PluginChoice::BundleDefault,
            Compute::cpu(),
        )?;
        Ok::<_, plugen_core::Error>((ctx, cpu))
    })();
    wasm_bindgen_futures::spawn_local(async move {
        let result = match started {
            Ok((ctx, cpu)) => parity::check(&ctx, &cpu, 8).await,
            Err(e) => Err(e),
        };
        let line = match result {
            Ok(p) if p.passed() => format!("plugen self-test: passed: {p}"),
            Ok(p) => format!("plugen self-test: FAILED: {p}"),
            Err(e) => format!("plugen self-test: FAILED: {e}"),
        };
        web_sys::console::log_1(&line.into());
    });
}

/// Shows `text` in the page's `#status` line (hidden when empty) and the console.
fn say(text: &str) {
    if !text.is_empty() {
        web_sys::console::log_1(&text.into());
    }
    let status = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("status"));
    if let Some(el) = status {
        el.set_text_content(Some(text));
        let _ = el.set_attribute("style", if text.is_empty() { "display:none" } else { "" });
    }
}

/// The bytes of a file served beside the page.
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let fail = |e: JsValue| {
        format!(
            "{url}: {}",
            e.as_string().unwrap_or_else(|| format!("{e:?}"))
        )
    };
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(fail)?
        .dyn_into()
        .map_err(fail)?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(fail)?)
        .await
        .map_err(fail)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Hands `bytes` to the browser as a download called `name`.
pub fn download(name: &str, bytes: &[u8], mime: &str) -> plugen_core::Result<()> {
    let fail = |e: JsValue| plugen_core::Error::invalid(format!("cannot download {name}: {e:?}"));
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| plugen_core::Error::invalid("no document to download into"))?;
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob =
        web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(fail)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(fail)?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(fail)?
        .dyn_into()
        .map_err(|_| plugen_core::Error::invalid("cannot make a download link"))?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    // The browser reads the blob after this returns: let it go a minute later.
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    if let Some(window) = web_sys::window() {
        let _ = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
    }
    Ok(())
}
