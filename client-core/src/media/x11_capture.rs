//! Screen and window capture on an X11 session through one long-lived XCB connection.
//!
//! `xcap` (which lists the screens and windows and captures everywhere else) opens four new X
//! connections for every X11 capture, and under load one capture in five or ten then fails
//! with "Connection error" — a share loses frames, and a slow machine can lose its share.
//! This source keeps one connection for the whole share and asks it for one `GetImage` a
//! capture: the same request `xcap` sends, without the connections around it, and with the
//! pixels converted in one pass (B G R x or x R G B words, 24- and 32-bit visuals). A shared
//! window is redirected off-screen with the Composite extension (automatic redirection, as
//! WebRTC's X11 window capturer does), so the server keeps all of its contents: parts covered
//! by other windows are captured as they are, not as black. A broken connection is opened
//! again on the next capture. A window that was destroyed is
//! [`MediaError::NoDevice`] (the share ends); any other failed capture is
//! [`MediaError::Device`] (the share thread skips it, within its grace).

use xcb::x;

use super::{now_us, MediaError, RgbFrame, VideoSource};

/// Whether this process's desktop session is X11 (not Wayland, whose screens only the
/// desktop portal may capture): `DISPLAY` is set and neither `XDG_SESSION_TYPE` nor
/// `WAYLAND_DISPLAY` names Wayland.
pub fn is_x11_session() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default().to_lowercase();
    !var("DISPLAY").is_empty() && var("XDG_SESSION_TYPE") != "wayland" && !var("WAYLAND_DISPLAY").contains("wayland")
}

/// What is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X11Target {
    /// One monitor by its RandR output id (`xcap`'s monitor id). Its rectangle of the root
    /// window is read at each capture, in real pixels, so a change of resolution or layout
    /// during a share is followed (and `Xft.dpi` scaling, which `xcap` applies to the
    /// coordinates it reports, does not crop the share).
    Monitor(u32),
    /// One window by its id, at whatever size it has at each capture.
    Window(u32),
}

/// Where each colour byte of a 32-bit pixel is.
#[derive(Debug, Clone, Copy)]
struct PixelLayout {
    red: usize,
    green: usize,
    blue: usize,
}

/// An open connection to the display, its root window and pixel layout.
struct Connected {
    conn: xcb::Connection,
    root: x::Window,
    layout: PixelLayout,
}

/// A screen, a screen area or a window of one X display, captured on demand. See the module
/// docs.
pub struct X11Capture {
    display: Option<String>,
    conn: Option<Connected>,
    target: X11Target,
    name: String,
}

impl std::fmt::Debug for X11Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Capture").field("target", &self.target).field("name", &self.name).finish()
    }
}

fn x_error(what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Device(format!("{what}: {e}"))
}

/// Connects to `display` (`None`: `$DISPLAY`) and finds its root window and pixel layout; a
/// `target` window is redirected to keep its contents ([`keep_contents`]). A screen whose
/// pixels are not 24-bit colour in 32-bit words is [`MediaError::Device`].
fn connect(display: Option<&str>, target: X11Target) -> Result<Connected, MediaError> {
    let optional = [xcb::Extension::Composite, xcb::Extension::RandR];
    let (conn, screen_index) = xcb::Connection::connect_with_extensions(display, &[], &optional)
        .map_err(|e| x_error("cannot connect to X", e))?;
    let setup = conn.get_setup();
    let screen = setup
        .roots()
        .nth(usize::try_from(screen_index).unwrap_or(0))
        .ok_or_else(|| MediaError::Device("the X display has no such screen".to_string()))?;
    let depth = screen.root_depth();
    let bits = setup.pixmap_formats().iter().find(|f| f.depth() == depth).map_or(0, |f| f.bits_per_pixel());
    if !matches!(depth, 24 | 32) || bits != 32 {
        return Err(MediaError::Device(format!(
            "this X screen has {depth}-bit colour in {bits}-bit pixels; only 24-bit colour in 32-bit pixels is captured directly"
        )));
    }
    let layout = match setup.image_byte_order() {
        x::ImageOrder::LsbFirst => PixelLayout { red: 2, green: 1, blue: 0 },
        x::ImageOrder::MsbFirst => PixelLayout { red: 1, green: 2, blue: 3 },
    };
    let root = screen.root();
    if has_extension(&conn, xcb::Extension::RandR) {
        // Monitors (GetMonitors) are RandR 1.5.
        let version = conn.send_request(&xcb::randr::QueryVersion { major_version: 1, minor_version: 5 });
        conn.wait_for_reply(version).map_err(|e| x_error("cannot use the X server's RandR", e))?;
    }
    if let X11Target::Window(id) = target {
        keep_contents(&conn, id);
    }
    Ok(Connected { conn, root, layout })
}

fn has_extension(conn: &xcb::Connection, extension: xcb::Extension) -> bool {
    conn.active_extensions().any(|e| e == extension)
}

/// Asks the server to keep all of window `id`'s contents off-screen (Composite's automatic
/// redirection; undone when the connection closes), so that covered parts can be captured.
/// Without the extension, or if the window is gone, nothing changes: covered parts then
/// capture as whatever covers them.
fn keep_contents(conn: &xcb::Connection, id: u32) {
    use xcb::composite;
    if !has_extension(conn, xcb::Extension::Composite) {
        return;
    }
    let version = conn.send_request(&composite::QueryVersion { client_major_version: 0, client_minor_version: 4 });
    if conn.wait_for_reply(version).is_err() {
        return;
    }
    let redirect = composite::RedirectWindow { window: xcb::XidNew::new(id), update: composite::Redirect::Automatic };
    if let Err(e) = conn.send_and_check_request(&redirect) {
        tracing::debug!("the shared window is not redirected ({e}); covered parts capture as covered");
    }
}

/// Where monitor `output` is on the root window now; [`MediaError::NoDevice`] if no active
/// monitor shows that output any more.
fn monitor_area(c: &Connected, output: u32) -> Result<(i16, i16, u16, u16), MediaError> {
    if !has_extension(&c.conn, xcb::Extension::RandR) {
        return Err(MediaError::Device("the X server has no RandR extension: its screens cannot be told apart".into()));
    }
    let cookie = c.conn.send_request(&xcb::randr::GetMonitors { window: c.root, get_active: true });
    let reply = c.conn.wait_for_reply(cookie).map_err(|e| x_error("cannot read where the screens are", e))?;
    reply
        .monitors()
        .find(|m| m.outputs().iter().any(|o| xcb::Xid::resource_id(o) == output))
        .map(|m| (m.x(), m.y(), m.width(), m.height()))
        .ok_or_else(|| MediaError::NoDevice("the shared screen was disconnected".to_string()))
}

/// A window's size if it is shown, `None` if it is minimised or otherwise not shown;
/// [`MediaError::NoDevice`] if it was destroyed.
fn shown_window_size(c: &Connected, id: u32) -> Result<Option<(u16, u16)>, MediaError> {
    let window: x::Window = xcb::XidNew::new(id);
    let closed = |e: &xcb::Error| {
        matches!(e, xcb::Error::Protocol(xcb::ProtocolError::X(x::Error::Drawable(_) | x::Error::Window(_), _)))
    };
    let attributes = c.conn.send_request(&x::GetWindowAttributes { window });
    let geometry = c.conn.send_request(&x::GetGeometry { drawable: x::Drawable::Window(window) });
    let (attributes, geometry) = match (c.conn.wait_for_reply(attributes), c.conn.wait_for_reply(geometry)) {
        (Ok(a), Ok(g)) => (a, g),
        (Err(e), _) | (_, Err(e)) if closed(&e) => {
            return Err(MediaError::NoDevice("the shared window was closed".to_string()))
        }
        (Err(e), _) | (_, Err(e)) => return Err(x_error("cannot read the shared window's size", e)),
    };
    Ok((attributes.map_state() == x::MapState::Viewable).then(|| (geometry.width(), geometry.height())))
}

impl X11Capture {
    /// Captures `target` of `display` (`None`: `$DISPLAY`), called `name` in
    /// [`VideoSource::describe`]. Fails if the display cannot be reached, its pixels are not
    /// 24-bit colour ([`MediaError::Device`]: `xcap` may still capture it), or the monitor or
    /// window does not exist ([`MediaError::NoDevice`]).
    pub fn open(display: Option<&str>, target: X11Target, name: &str) -> Result<Self, MediaError> {
        let connected = connect(display, target)?;
        match target {
            X11Target::Monitor(output) => {
                monitor_area(&connected, output)?;
            }
            X11Target::Window(id) => {
                shown_window_size(&connected, id)?;
            }
        }
        Ok(Self { display: display.map(str::to_string), conn: Some(connected), target, name: name.to_string() })
    }
}

impl VideoSource for X11Capture {
    /// Captures the target. A shared window that is minimised (or otherwise not shown) leaves
    /// `out` as it was, the last picture of it, as long as there is one.
    fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), MediaError> {
        if self.conn.as_ref().is_none_or(|c| c.conn.has_error().is_err()) {
            self.conn = None;
            self.conn = Some(connect(self.display.as_deref(), self.target)?);
        }
        let Some(c) = self.conn.as_ref() else { return Err(MediaError::Device("no X connection".into())) };
        let (drawable, x, y, width, height) = match self.target {
            X11Target::Monitor(output) => {
                let (x, y, width, height) = monitor_area(c, output)?;
                (x::Drawable::Window(c.root), x, y, width, height)
            }
            X11Target::Window(id) => match shown_window_size(c, id)? {
                Some((width, height)) => (x::Drawable::Window(xcb::XidNew::new(id)), 0, 0, width, height),
                None if !out.data.is_empty() => return Ok(()),
                None => return Err(MediaError::Device("the shared window is minimised or hidden".to_string())),
            },
        };
        let cookie = c.conn.send_request(&x::GetImage {
            format: x::ImageFormat::ZPixmap,
            drawable,
            x,
            y,
            width,
            height,
            plane_mask: u32::MAX,
        });
        let image = c.conn.wait_for_reply(cookie).map_err(|e| x_error("screen capture failed", e))?;
        let pixels = image.data();
        let count = usize::from(width) * usize::from(height);
        if !matches!(image.depth(), 24 | 32) || pixels.len() < count * 4 {
            return Err(MediaError::Device(format!(
                "screen capture failed: {} bytes of {}-bit colour for {width}x{height} pixels",
                pixels.len(),
                image.depth()
            )));
        }
        out.width = u32::from(width);
        out.height = u32::from(height);
        out.data.clear();
        out.data.reserve(count * 3);
        for px in pixels[..count * 4].chunks_exact(4) {
            out.data.extend_from_slice(&[px[c.layout.red], px[c.layout.green], px[c.layout.blue]]);
        }
        out.capture_ts_us = now_us();
        Ok(())
    }

    fn describe(&self) -> String {
        match self.target {
            X11Target::Monitor(_) => format!("screen {}", self.name),
            X11Target::Window(_) => format!("window {}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    use super::*;

    /// An Xvfb server of its own for one test, on the first free display number.
    struct Xvfb {
        child: Child,
        display: String,
    }

    /// How long an Xvfb may take to start accepting connections.
    const XVFB_START: std::time::Duration = std::time::Duration::from_secs(20);

    impl Xvfb {
        fn start(width: u16, height: u16) -> Self {
            // -displayfd 1: the server picks a free display and writes its number to stdout
            // once it accepts connections. Its stderr goes to a file, to say why if it does not.
            let log = tempfile::NamedTempFile::new().unwrap();
            let mut child = Command::new("Xvfb")
                .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0", &format!("{width}x{height}x24")])
                .stdout(Stdio::piped())
                .stderr(log.reopen().unwrap())
                .spawn()
                .expect("Xvfb (scripts/install-deps.sh installs it)");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx.recv_timeout(XVFB_START).unwrap_or_default();
            let Ok(number) = line.trim().parse::<u32>() else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Xvfb did not start ({line:?}): {}", std::fs::read_to_string(log.path()).unwrap_or_default());
            };
            Self { child, display: format!(":{number}") }
        }
    }

    impl Drop for Xvfb {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A pixel of the test picture: every position its own colour.
    fn colour_at(x: u32, y: u32) -> [u8; 3] {
        [(x * 7 % 256) as u8, (y * 5 % 256) as u8, ((x + y) * 3 % 256) as u8]
    }

    /// Paints the test picture as the root window's background, as the screen_share bench
    /// does. The connection is returned to be kept: when its last client leaves, an X server
    /// starts over with a blank screen.
    fn paint_root(display: &str, width: u16, height: u16) -> xcb::Connection {
        let (conn, index) = xcb::Connection::connect(Some(display)).unwrap();
        let screen = conn.get_setup().roots().nth(index as usize).unwrap();
        let (root, depth) = (screen.root(), screen.root_depth());
        let pixmap: x::Pixmap = conn.generate_id();
        conn.send_request(&x::CreatePixmap { depth, pid: pixmap, drawable: x::Drawable::Window(root), width, height });
        let gc: x::Gcontext = conn.generate_id();
        conn.send_request(&x::CreateGc { cid: gc, drawable: x::Drawable::Pixmap(pixmap), value_list: &[] });
        for y in 0..u32::from(height) {
            let row: Vec<u8> = (0..u32::from(width))
                .flat_map(|x| {
                    let [r, g, b] = colour_at(x, y);
                    [b, g, r, 0]
                })
                .collect();
            conn.send_request(&x::PutImage {
                format: x::ImageFormat::ZPixmap,
                drawable: x::Drawable::Pixmap(pixmap),
                gc,
                width,
                height: 1,
                dst_x: 0,
                dst_y: y as i16,
                left_pad: 0,
                depth,
                data: &row,
            });
        }
        conn.send_request(&x::ChangeWindowAttributes { window: root, value_list: &[x::Cw::BackPixmap(pixmap)] });
        conn.send_request(&x::ClearArea { exposures: false, window: root, x: 0, y: 0, width: 0, height: 0 });
        conn.wait_for_reply(conn.send_request(&x::GetInputFocus {})).unwrap();
        conn
    }

    #[test]
    fn a_monitor_is_found_by_its_output_and_captured_exactly_capture_after_capture() {
        let xvfb = Xvfb::start(320, 240);
        let _painter = paint_root(&xvfb.display, 320, 240);
        let (conn, index) =
            xcb::Connection::connect_with_extensions(Some(&xvfb.display), &[xcb::Extension::RandR], &[]).unwrap();
        let root = conn.get_setup().roots().nth(index as usize).unwrap().root();
        conn.wait_for_reply(conn.send_request(&xcb::randr::QueryVersion { major_version: 1, minor_version: 5 }))
            .unwrap();
        let monitors =
            conn.wait_for_reply(conn.send_request(&xcb::randr::GetMonitors { window: root, get_active: true }));
        let output = xcb::Xid::resource_id(&monitors.unwrap().monitors().next().unwrap().outputs()[0]);

        let mut capture = X11Capture::open(Some(&xvfb.display), X11Target::Monitor(output), "screen-0").unwrap();
        assert_eq!(capture.describe(), "screen screen-0");
        let mut frame = RgbFrame::default();
        for _ in 0..30 {
            capture.next_frame(&mut frame).expect("every capture on one connection succeeds");
        }
        assert_eq!((frame.width, frame.height), (320, 240));
        let expected: Vec<u8> = (0..240).flat_map(|y| (0..320).flat_map(move |x| colour_at(x, y))).collect();
        let first_wrong = frame.data.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(frame.data == expected, "the capture is the painted picture; first difference at byte {first_wrong:?}");
        match X11Capture::open(Some(&xvfb.display), X11Target::Monitor(output + 1000), "gone") {
            Err(MediaError::NoDevice(why)) => assert!(why.contains("disconnected"), "{why}"),
            other => panic!("a monitor that is not there: {other:?}"),
        }
    }

    /// Creates and maps a top-level window at `(x, y, width, height)` filled with `rgb`, and
    /// waits until the server has handled it.
    fn show_window(conn: &xcb::Connection, screen: &x::Screen, area: (i16, i16, u16, u16), rgb: u32) -> x::Window {
        let (x, y, width, height) = area;
        let window: x::Window = conn.generate_id();
        conn.send_request(&x::CreateWindow {
            depth: x::COPY_FROM_PARENT as u8,
            wid: window,
            parent: screen.root(),
            x,
            y,
            width,
            height,
            border_width: 0,
            class: x::WindowClass::InputOutput,
            visual: screen.root_visual(),
            value_list: &[x::Cw::BackPixel(rgb)],
        });
        conn.send_request(&x::MapWindow { window });
        conn.wait_for_reply(conn.send_request(&x::GetInputFocus {})).unwrap();
        window
    }

    #[test]
    fn a_window_is_captured_at_its_size_until_it_is_destroyed() {
        let xvfb = Xvfb::start(320, 240);
        let (conn, index) = xcb::Connection::connect(Some(&xvfb.display)).unwrap();
        let screen = conn.get_setup().roots().nth(index as usize).unwrap();
        let window = show_window(&conn, screen, (10, 20, 100, 80), 0x00_30_60_90);

        let id = xcb::Xid::resource_id(&window);
        let mut capture = X11Capture::open(Some(&xvfb.display), X11Target::Window(id), "editor").unwrap();
        assert_eq!(capture.describe(), "window editor");
        // Another window covers half of it.
        show_window(&conn, screen, (60, 0, 200, 200), 0x00_ff_00_00);
        let mut frame = RgbFrame::default();
        capture.next_frame(&mut frame).unwrap();
        assert_eq!((frame.width, frame.height), (100, 80));
        let wrong = frame.data.chunks_exact(3).filter(|p| *p != [0x30, 0x60, 0x90]).count();
        assert_eq!(wrong, 0, "pixels not the window's own background, the covered half included");

        // Resized: the next capture has the new size.
        conn.send_request(&x::ConfigureWindow { window, value_list: &[x::ConfigWindow::Width(60)] });
        conn.wait_for_reply(conn.send_request(&x::GetInputFocus {})).unwrap();
        capture.next_frame(&mut frame).unwrap();
        assert_eq!((frame.width, frame.height), (60, 80));

        // Minimised (unmapped): the last picture stays; shown again, it is captured again.
        conn.send_request(&x::UnmapWindow { window });
        conn.wait_for_reply(conn.send_request(&x::GetInputFocus {})).unwrap();
        frame.capture_ts_us = 1;
        capture.next_frame(&mut frame).expect("a minimised window keeps its last picture");
        assert_eq!((frame.width, frame.height, frame.capture_ts_us), (60, 80, 1));
        let mut fresh = RgbFrame::default();
        match capture.next_frame(&mut fresh) {
            Err(MediaError::Device(why)) => assert!(why.contains("minimised"), "{why}"),
            other => panic!("a minimised window with no picture yet: {other:?}"),
        }
        conn.send_request(&x::MapWindow { window });
        conn.wait_for_reply(conn.send_request(&x::GetInputFocus {})).unwrap();
        capture.next_frame(&mut frame).unwrap();
        assert!(frame.capture_ts_us > 1, "captured again once shown");

        conn.send_request(&x::DestroyWindow { window });
        conn.wait_for_reply(conn.send_request(&x::GetInputFocus {})).unwrap();
        match capture.next_frame(&mut frame) {
            Err(MediaError::NoDevice(why)) => assert!(why.contains("closed"), "{why}"),
            other => panic!("a destroyed window: {other:?}"),
        }
        assert!(matches!(
            X11Capture::open(Some(&xvfb.display), X11Target::Window(id), "gone"),
            Err(MediaError::NoDevice(_))
        ));
    }

    #[test]
    fn a_display_that_is_not_there_is_a_clear_error() {
        match X11Capture::open(Some(":9999"), X11Target::Monitor(1), "none") {
            Err(MediaError::Device(why)) => assert!(why.contains("cannot connect to X"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
