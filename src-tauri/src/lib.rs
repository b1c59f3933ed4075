//! Parlor desktop app: a thin Tauri shell that translates between the UI and client-core.

/// Builds and runs the app.
pub fn run() {
    tauri::Builder::default().run(tauri::generate_context!()).expect("error while running Parlor");
}
