//! Updates of the app itself, through the Tauri updater plugin.
//!
//! A release build names its update endpoint and the public key its updates are signed with
//! (`plugins.updater` in tauri.conf.json, filled in by the release workflow); a build without an
//! endpoint (every build from source, and the tests) never checks, so nothing reaches the
//! network on its own. The page asks once at start (`check_for_update`); if a newer signed
//! version exists it offers it, and `install_update` downloads it, checks its signature against
//! the built-in key, installs it and restarts the app. An update that fails any step is
//! reported as `updateFailed` and the running version stays.

use tauri::{AppHandle, Runtime};
use tauri_plugin_updater::UpdaterExt;

use crate::error::AppError;
use crate::payloads::UpdateInfo;

/// The update found by the last check, kept for `install_update`.
#[derive(Default)]
pub struct PendingUpdate(tokio::sync::Mutex<Option<tauri_plugin_updater::Update>>);

/// Whether the build names an update endpoint (`plugins.updater.endpoints` not empty).
pub fn endpoint_configured(plugins: &serde_json::Value) -> bool {
    plugins
        .get("updater")
        .and_then(|u| u.get("endpoints"))
        .and_then(serde_json::Value::as_array)
        .is_some_and(|endpoints| !endpoints.is_empty())
}

fn failed(e: tauri_plugin_updater::Error) -> AppError {
    AppError::UpdateFailed(e.to_string())
}

/// Checks the endpoint for a newer version: None without an endpoint or when up to date.
pub async fn check<R: Runtime>(app: &AppHandle<R>, pending: &PendingUpdate) -> Result<Option<UpdateInfo>, AppError> {
    let plugins = serde_json::to_value(&app.config().plugins).unwrap_or_default();
    if !endpoint_configured(&plugins) {
        tracing::debug!("no update endpoint configured: not checking for updates");
        return Ok(None);
    }
    let update = app.updater().map_err(failed)?.check().await.map_err(failed)?;
    let info = update.as_ref().map(|u| UpdateInfo {
        version: u.version.clone(),
        current_version: u.current_version.clone(),
        notes: u.body.clone(),
    });
    match &info {
        Some(i) => tracing::info!(version = %i.version, "an update is available"),
        None => tracing::info!("Parlor is up to date"),
    }
    *pending.0.lock().await = update;
    Ok(info)
}

/// Downloads, verifies and installs the update the last check found, then restarts the app.
pub async fn install<R: Runtime>(app: &AppHandle<R>, pending: &PendingUpdate) -> Result<(), AppError> {
    // A copy: after a failed download the same update can be tried again.
    let Some(update) = pending.0.lock().await.clone() else {
        return Err(AppError::InvalidState("no update to install: check for one first".into()));
    };
    tracing::info!(version = %update.version, "installing the update");
    update.download_and_install(|_, _| {}, || {}).await.map_err(failed)?;
    app.restart()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_named_endpoint_turns_checking_on() {
        assert!(!endpoint_configured(&json!({})));
        assert!(!endpoint_configured(&json!({ "updater": { "pubkey": "", "endpoints": [] } })));
        assert!(endpoint_configured(
            &json!({ "updater": { "pubkey": "k", "endpoints": ["https://updates.example/latest.json"] } })
        ));
    }

    #[test]
    fn the_shipped_configuration_never_checks() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../tauri.conf.json")).expect("tauri.conf.json is JSON");
        assert!(!endpoint_configured(&conf["plugins"]), "builds from source must not check for updates");
        assert_eq!(conf["plugins"]["deep-link"]["desktop"]["schemes"], json!(["parlor"]));
    }
}
