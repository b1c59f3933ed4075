//! The `#[tauri::command]`s of docs/app-ipc.md: each unwraps its arguments and calls [`App`].
//! Argument names are the contract's, in snake_case (Tauri maps `relayAddr` to `relay_addr`).

use std::path::PathBuf;
use std::sync::Arc;

use tauri::ipc::{Channel, InvokeResponseBody};
use tauri::State;
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::app::App;
use crate::error::{AppError, DeviceKind};
use crate::opened_links::OpenedLinks;
use crate::payloads::{
    ChatSent, DeviceChoice, DeviceList, FileOpened, InvitationFields, MediaDevice, MeetingCreated, Reaction, Role,
    ScreenChoice, ScreenSource, Settings, StatsSnapshot, TransferStarted, UpdateInfo,
};
use crate::updates::{self, PendingUpdate};

type AppState<'a> = State<'a, Arc<App>>;

#[tauri::command]
pub async fn create_meeting(
    app: AppState<'_>,
    name: String,
    relay_addr: Option<String>,
) -> Result<MeetingCreated, AppError> {
    app.create_meeting(name, relay_addr).await
}

#[tauri::command]
pub async fn join_meeting(
    app: AppState<'_>,
    code: String,
    name: String,
    relay_addr: String,
    fingerprint: Option<String>,
) -> Result<(), AppError> {
    app.join_meeting(code, name, relay_addr, fingerprint).await
}

#[tauri::command]
pub fn read_invitation(app: AppState<'_>, text: String) -> Result<InvitationFields, AppError> {
    app.read_invitation(&text)
}

/// The invitation link the app was opened with (or that was opened since), once; null if none.
#[tauri::command]
pub fn take_opened_invitation(links: State<'_, OpenedLinks>) -> Option<String> {
    links.take()
}

/// A newer signed version of the app, if the build names an update endpoint and one exists.
#[tauri::command]
pub async fn check_for_update(
    handle: tauri::AppHandle,
    pending: State<'_, PendingUpdate>,
) -> Result<Option<UpdateInfo>, AppError> {
    updates::check(&handle, &pending).await
}

/// Installs the update `check_for_update` found and restarts the app.
#[tauri::command]
pub async fn install_update(handle: tauri::AppHandle, pending: State<'_, PendingUpdate>) -> Result<(), AppError> {
    updates::install(&handle, &pending).await
}

#[tauri::command]
pub fn trust_relay_certificate(app: AppState<'_>, relay_addr: String, fingerprint: String) -> Result<(), AppError> {
    app.trust_relay_certificate(&relay_addr, &fingerprint)
}

#[tauri::command]
pub async fn cancel_join(app: AppState<'_>) -> Result<(), AppError> {
    app.cancel_join().await
}

#[tauri::command]
pub async fn admit(app: AppState<'_>, request_id: u64) -> Result<(), AppError> {
    app.admit(request_id).await
}

#[tauri::command]
pub async fn deny(app: AppState<'_>, request_id: u64) -> Result<(), AppError> {
    app.deny(request_id).await
}

#[tauri::command]
pub async fn remove_participant(app: AppState<'_>, participant_id: u32) -> Result<(), AppError> {
    app.remove_participant(participant_id).await
}

#[tauri::command]
pub async fn admit_all(app: AppState<'_>) -> Result<(), AppError> {
    app.admit_all().await
}

#[tauri::command]
pub async fn lock_meeting(app: AppState<'_>, locked: bool) -> Result<(), AppError> {
    app.lock_meeting(locked).await
}

#[tauri::command]
pub async fn set_role(app: AppState<'_>, participant_id: u32, role: Role) -> Result<(), AppError> {
    app.set_role(participant_id, role).await
}

#[tauri::command]
pub async fn mute_participant(app: AppState<'_>, participant_id: u32) -> Result<(), AppError> {
    app.mute(Some(participant_id)).await
}

#[tauri::command]
pub async fn mute_all(app: AppState<'_>) -> Result<(), AppError> {
    app.mute(None).await
}

#[tauri::command]
pub async fn request_media(app: AppState<'_>, participant_id: u32, device: MediaDevice) -> Result<(), AppError> {
    app.request_media(participant_id, device).await
}

#[tauri::command]
pub async fn end_meeting(app: AppState<'_>) -> Result<(), AppError> {
    app.end_meeting().await
}

#[tauri::command]
pub async fn raise_hand(app: AppState<'_>, raised: bool) -> Result<(), AppError> {
    app.raise_hand(raised).await
}

#[tauri::command]
pub async fn lower_hand(app: AppState<'_>, participant_id: u32) -> Result<(), AppError> {
    app.lower_hand(participant_id).await
}

#[tauri::command]
pub async fn react(app: AppState<'_>, reaction: Reaction) -> Result<(), AppError> {
    app.react(reaction).await
}

/// The screens and windows there are to share, with thumbnails (captured off the async
/// runtime: a capture takes tens of milliseconds).
#[tauri::command]
pub async fn list_screen_sources() -> Result<Vec<ScreenSource>, AppError> {
    let sources = tokio::task::spawn_blocking(client_core::media::list_screen_sources)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::from_device(DeviceKind::Screen, e))?;
    Ok(sources.into_iter().map(ScreenSource::from).collect())
}

#[tauri::command]
pub async fn start_screen_share(app: AppState<'_>, choice: ScreenChoice) -> Result<(), AppError> {
    app.start_screen_share(choice).await
}

#[tauri::command]
pub async fn stop_screen_share(app: AppState<'_>) -> Result<(), AppError> {
    app.stop_screen_share().await
}

/// A desktop notification (the page asks while its window is not focused).
#[tauri::command]
pub fn notify(handle: tauri::AppHandle, title: String, body: String) -> Result<(), AppError> {
    use tauri_plugin_notification::NotificationExt;
    handle
        .notification()
        .builder()
        .title(title)
        .body(body)
        .show()
        .map_err(|e| AppError::Internal(format!("cannot show a notification: {e}")))
}

#[tauri::command]
pub async fn leave_meeting(app: AppState<'_>) -> Result<(), AppError> {
    app.leave_meeting().await
}

#[tauri::command]
pub async fn set_mic(app: AppState<'_>, on: bool) -> Result<(), AppError> {
    app.set_mic(on).await
}

#[tauri::command]
pub async fn set_camera(app: AppState<'_>, on: bool) -> Result<(), AppError> {
    app.set_camera(on).await
}

#[tauri::command]
pub async fn list_devices(app: AppState<'_>) -> Result<DeviceList, AppError> {
    app.list_devices().await
}

#[tauri::command]
pub async fn choose_devices(
    app: AppState<'_>,
    camera: Option<String>,
    microphone: Option<String>,
    speaker: Option<String>,
) -> Result<(), AppError> {
    app.choose_devices(DeviceChoice { camera, microphone, speaker }).await
}

#[tauri::command]
pub async fn start_preview(app: AppState<'_>) -> Result<(), AppError> {
    app.set_preview(true).await
}

#[tauri::command]
pub async fn stop_preview(app: AppState<'_>) -> Result<(), AppError> {
    app.set_preview(false).await
}

#[tauri::command]
pub fn video_subscribe(app: AppState<'_>, on_frame: Channel<InvokeResponseBody>) {
    app.pump().set_sink(Arc::new(on_frame));
}

#[tauri::command]
pub fn video_frame_drawn(app: AppState<'_>, participant_id: u32, width: u32, height: u32) {
    app.pump().drawn(participant_id, width, height);
}

#[tauri::command]
pub async fn send_chat(app: AppState<'_>, text: String) -> Result<ChatSent, AppError> {
    app.send_chat(text).await
}

#[tauri::command]
pub async fn send_file(app: AppState<'_>, path: String) -> Result<TransferStarted, AppError> {
    app.send_file(path).await
}

#[tauri::command]
pub async fn accept_file(app: AppState<'_>, file_id: u64) -> Result<TransferStarted, AppError> {
    app.accept_file(file_id).await
}

#[tauri::command]
pub fn get_download_dir(app: AppState<'_>) -> String {
    app.download_dir().to_string_lossy().into_owned()
}

#[tauri::command]
pub async fn choose_download_dir(app: AppState<'_>, dir: String) -> Result<(), AppError> {
    app.choose_download_dir(dir)
}

#[tauri::command]
pub async fn open_file(handle: tauri::AppHandle, app: AppState<'_>, path: String) -> Result<FileOpened, AppError> {
    let path = PathBuf::from(path);
    let how = app.how_to_open(&path)?;
    let opener = handle.opener();
    match how {
        FileOpened::Opened => opener.open_path(path.to_string_lossy(), None::<&str>),
        FileOpened::ShownInFolder => opener.reveal_item_in_dir(&path),
    }
    .map_err(|e| AppError::Internal(format!("cannot open {}: {e}", path.display())))?;
    Ok(how)
}

/// The clip button: the file dialog, in the shell, so the shell knows the person chose it.
#[tauri::command]
pub async fn pick_file(handle: tauri::AppHandle, app: AppState<'_>) -> Result<Option<String>, AppError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle.dialog().file().set_title("Send a file to everyone").pick_file(move |picked| {
        let _ = tx.send(picked);
    });
    let picked = rx.await.map_err(|_| AppError::Internal("the file dialog closed without an answer".into()))?;
    let Some(path) = picked.and_then(|p| p.into_path().ok()) else { return Ok(None) };
    app.remember_chosen([path.clone()]);
    Ok(Some(path.to_string_lossy().into_owned()))
}

#[tauri::command]
pub async fn get_stats(app: AppState<'_>) -> Result<Option<StatsSnapshot>, AppError> {
    Ok(app.stats().await)
}

#[tauri::command]
pub fn get_settings(app: AppState<'_>) -> Settings {
    app.settings()
}

#[tauri::command]
pub async fn save_settings(app: AppState<'_>, settings: Settings) -> Result<(), AppError> {
    app.save_settings(settings).await
}
