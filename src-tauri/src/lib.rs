//! Parlor desktop app: a thin Tauri shell that translates between the UI and client-core.
//!
//! - [`commands`]: the `#[tauri::command]`s of `docs/app-ipc.md`;
//! - [`app`]: the state behind them — one `client_core::Session`, the task forwarding its
//!   events to the page, the embedded relay ([`relay`]), the local preview ([`local_video`]),
//!   devices ([`devices`]) and settings ([`settings`]);
//! - [`frames`]: decoded frames to the page over a binary Channel with per-tile flow control;
//! - [`events`], [`payloads`]: the page's event names and camelCase payloads;
//! - [`error`]: the one error type, serialized as `{ code, message, device? }`;
//! - [`opened_links`]: invitation links the app is opened with; [`updates`]: signed self-updates;
//! - `typescript` (tests only): the page's TypeScript types, generated from [`payloads`].

pub mod app;
pub mod commands;
pub mod devices;
pub mod error;
pub mod events;
pub mod frames;
pub mod local_video;
pub mod mic_meter;
pub mod opened_links;
pub mod payloads;
pub mod relay;
pub mod settings;
#[cfg(test)]
mod typescript;
pub mod updates;

use std::sync::Arc;

use tauri::Manager;
use tauri_plugin_deep_link::DeepLinkExt;

use crate::app::{App, AppPaths, EventSink};
use crate::opened_links::OpenedLinks;
use crate::payloads::UiEvent;
use crate::relay::BindPlan;

/// Runs in the page before any of its scripts. WebKitGTK derives `navigator.language` from the
/// C library's locale and turns `C.UTF-8` (the default of many minimal systems, and of this
/// project's CI) into the tag "C", which is not valid BCP 47: `Intl.NumberFormat(navigator.language)`
/// then throws, and uPlot calls exactly that when it loads, so the page would never start. When
/// the tag is invalid the page sees "en-US" instead; a valid one is left alone.
const LANGUAGE_FIX: &str = r#"(() => {
  try { new Intl.NumberFormat(navigator.language); return; } catch (_) {}
  const fixed = { language: "en-US", languages: ["en-US"] };
  for (const [key, value] of Object.entries(fixed)) {
    Object.defineProperty(Navigator.prototype, key, { get: () => value, configurable: true });
  }
})();"#;

/// Logs go to standard error, filtered by `PARLOR_LOG` (default `info`), or to the file named
/// by `PARLOR_LOG_FILE` (the end-to-end test reads it: WebKitWebDriver swallows the app's output).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PARLOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let file = std::env::var_os("PARLOR_LOG_FILE").and_then(|p| std::fs::File::create(p).ok());
    let _ = match file {
        Some(f) => builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).try_init(),
        None => builder.try_init(),
    };
}

/// Whether the machine has a GPU render node (`/dev/dri/renderD*`).
#[cfg(target_os = "linux")]
fn has_render_node() -> bool {
    std::fs::read_dir("/dev/dri")
        .map(|dir| dir.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD")))
        .unwrap_or(false)
}

/// WebKitGTK's DMA-BUF renderer wants a GPU render node. Without one (a virtual machine, a
/// remote desktop, Xvfb) it composites the window about 12 times a second, and a WebGL canvas
/// can only be drawn once per composited frame, so video would crawl at 12 fps; its older
/// shared-memory path composites at the display's rate. An explicit setting is left alone.
#[cfg(target_os = "linux")]
fn choose_webkit_renderer() {
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() && !has_render_node() {
        // Still single-threaded: nothing else reads the environment yet.
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
}

/// Brings the main window to the front (a second launch, an opened invitation).
fn show_main_window(handle: &tauri::AppHandle) {
    if let Some(window) = handle.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Keeps the invitation link the app was started with, and each one opened while it runs (then
/// tells the page and focuses the window). Only `parlor:` links reach here: the plugin matches
/// the launch argument against the configured scheme.
fn watch_opened_links(handle: &tauri::AppHandle) {
    let deep_link = handle.deep_link();
    // Packages register `parlor:` when installed; an AppImage is never installed, so it
    // registers itself (a desktop entry in the person's own applications folder) when it runs.
    #[cfg(target_os = "linux")]
    if std::env::var_os("APPIMAGE").is_some() {
        if let Err(e) = deep_link.register_all() {
            tracing::warn!("cannot register parlor: links for this AppImage: {e}");
        }
    }
    // Listening first: a link a second launch forwards from now on is not missed; the one this
    // launch carried (or a newer one) is read after.
    let running = handle.clone();
    deep_link.on_open_url(move |event| {
        if running.state::<OpenedLinks>().opened(event.urls().into_iter().map(String::from)) {
            tracing::info!("an invitation link was opened");
            running.emit(&UiEvent::InvitationOpened);
            show_main_window(&running);
        }
    });
    if let Ok(Some(urls)) = deep_link.get_current() {
        tracing::info!("started with an invitation link");
        handle.state::<OpenedLinks>().opened(urls.into_iter().map(String::from));
    }
}

/// Builds and runs the app.
pub fn run() {
    #[cfg(target_os = "linux")]
    choose_webkit_renderer();
    init_logging();
    // Parlor's own connections name their provider; this makes it the default for the rest
    // (the updater's HTTPS), instead of the ring provider the plugin would install.
    let _ = rustls::crypto::CryptoProvider::install_default(Arc::unwrap_or_clone(protocol::tls::provider()));

    let result = tauri::Builder::default()
        // First: a second launch (an invitation clicked while Parlor runs) hands its argument
        // to this instance, which the deep-link feature turns into an opened URL, and exits.
        .plugin(tauri_plugin_single_instance::init(|handle, _argv, _cwd| show_main_window(handle)))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_updater::Builder::new().build())
        .manage(OpenedLinks::default())
        .manage(updates::PendingUpdate::default())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri::plugin::Builder::<tauri::Wry>::new("parlor-page").js_init_script(LANGUAGE_FIX).build())
        .setup(|tauri_app| {
            let paths = tauri_app.path();
            let config_dir = paths.app_config_dir()?;
            let downloads = paths
                .download_dir()
                .or_else(|_| paths.home_dir().map(|h| h.join("Downloads")))
                .unwrap_or_else(|_| std::env::temp_dir());
            let handle = tauri_app.handle().clone();
            let paths =
                AppPaths { settings: config_dir.join("settings.json"), data_dir: paths.app_data_dir()?, downloads };
            let app = App::new(Arc::new(handle), paths, BindPlan::from_env());
            tauri_app.manage(Arc::new(app));
            watch_opened_links(tauri_app.handle());
            Ok(())
        })
        .on_window_event(|window, event| {
            // Runs before the page hears of the drop, so its `send_file` finds the paths here.
            if let tauri::WindowEvent::DragDrop(tauri::DragDropEvent::Drop { paths, .. }) = event {
                window.state::<Arc<App>>().remember_chosen(paths.iter().cloned());
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::create_meeting,
            commands::join_meeting,
            commands::cancel_join,
            commands::admit,
            commands::deny,
            commands::remove_participant,
            commands::admit_all,
            commands::lock_meeting,
            commands::set_role,
            commands::mute_participant,
            commands::mute_all,
            commands::request_media,
            commands::end_meeting,
            commands::raise_hand,
            commands::lower_hand,
            commands::react,
            commands::list_screen_sources,
            commands::start_screen_share,
            commands::stop_screen_share,
            commands::notify,
            commands::leave_meeting,
            commands::set_mic,
            commands::set_camera,
            commands::list_devices,
            commands::choose_devices,
            commands::start_preview,
            commands::stop_preview,
            commands::video_subscribe,
            commands::video_frame_drawn,
            commands::send_chat,
            commands::send_file,
            commands::accept_file,
            commands::read_invitation,
            commands::take_opened_invitation,
            commands::check_for_update,
            commands::install_update,
            commands::trust_relay_certificate,
            commands::get_download_dir,
            commands::choose_download_dir,
            commands::open_file,
            commands::pick_file,
            commands::get_stats,
            commands::get_settings,
            commands::save_settings,
        ])
        .build(tauri::generate_context!());
    let tauri_app = match result {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Parlor could not start: {e}");
            std::process::exit(1);
        }
    };
    tauri_app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Leave the meeting and stop the embedded relay before the process goes.
            if let Some(app) = handle.try_state::<Arc<App>>() {
                let app = app.inner().clone();
                tauri::async_runtime::block_on(app.shutdown());
            }
        }
    });
}
