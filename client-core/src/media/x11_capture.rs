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
    /// A rectangle of the root window: one monitor of the screen.
    Area { x: i16, y: i16, width: u16, height: u16 },
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

/// A screen area or a window of one X display, captured on demand. See the module docs.
pub struct X11Capture {
    display: Option<String>,
    conn: Option<(xcb::Connection, x::Window, PixelLayout)>,
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
/// `target` window is redirected to keep its contents ([`keep_contents`]).
fn connect(display: Option<&str>, target: X11Target) -> Result<(xcb::Connection, x::Window, PixelLayout), MediaError> {
    let (conn, screen_index) = xcb::Connection::connect_with_extensions(display, &[], &[xcb::Extension::Composite])
        .map_err(|e| x_error("cannot connect to X", e))?;
    if let X11Target::Window(id) = target {
        keep_contents(&conn, id);
    }
    let setup = conn.get_setup();
    let screen = setup
        .roots()
        .nth(usize::try_from(screen_index).unwrap_or(0))
        .ok_or_else(|| MediaError::Device("the X display has no such screen".to_string()))?;
    let depth = screen.root_depth();
    let bits = setup.pixmap_formats().iter().find(|f| f.depth() == depth).map(|f| f.bits_per_pixel());
    if !matches!(depth, 24 | 32) || bits != Some(32) {
        return Err(MediaError::Device(format!(
            "X screens of depth {depth} ({bits:?} bits a pixel) are not captured; 24-bit colour is"
        )));
    }
    let layout = match setup.image_byte_order() {
        x::ImageOrder::LsbFirst => PixelLayout { red: 2, green: 1, blue: 0 },
        x::ImageOrder::MsbFirst => PixelLayout { red: 1, green: 2, blue: 3 },
    };
    let root = screen.root();
    Ok((conn, root, layout))
}

/// Asks the server to keep all of window `id`'s contents off-screen (Composite's automatic
/// redirection; undone when the connection closes), so that covered parts can be captured.
/// Without the extension, or if the window is gone, nothing changes: covered parts then
/// capture as whatever covers them.
fn keep_contents(conn: &xcb::Connection, id: u32) {
    use xcb::composite;
    if !conn.active_extensions().any(|e| e == xcb::Extension::Composite) {
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

impl X11Capture {
    /// Captures `target` of `display` (`None`: `$DISPLAY`), called `name` in
    /// [`VideoSource::describe`]. Fails if the display cannot be reached, its pixels are not
    /// 24-bit colour, or the window does not exist.
    pub fn open(display: Option<&str>, target: X11Target, name: &str) -> Result<Self, MediaError> {
        let mut capture = Self {
            display: display.map(str::to_string),
            conn: Some(connect(display, target)?),
            target,
            name: name.to_string(),
        };
        if let X11Target::Window(id) = target {
            capture.window_size(id)?;
        }
        Ok(capture)
    }

    /// The window's size now; [`MediaError::NoDevice`] if it was destroyed.
    fn window_size(&mut self, id: u32) -> Result<(u16, u16), MediaError> {
        let Some((conn, ..)) = &self.conn else { return Err(MediaError::Device("no X connection".into())) };
        let window = xcb::XidNew::new(id);
        let cookie = conn.send_request(&x::GetGeometry { drawable: x::Drawable::Window(window) });
        match conn.wait_for_reply(cookie) {
            Ok(geometry) => Ok((geometry.width(), geometry.height())),
            Err(xcb::Error::Protocol(xcb::ProtocolError::X(x::Error::Drawable(_) | x::Error::Window(_), _))) => {
                Err(MediaError::NoDevice("the shared window was closed".to_string()))
            }
            Err(e) => Err(x_error("cannot read the shared window's size", e)),
        }
    }
}

impl VideoSource for X11Capture {
    fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), MediaError> {
        if self.conn.as_ref().is_none_or(|(conn, ..)| conn.has_error().is_err()) {
            self.conn = None;
            self.conn = Some(connect(self.display.as_deref(), self.target)?);
        }
        let (drawable, x, y, width, height) = match self.target {
            X11Target::Area { x, y, width, height } => {
                let root = self.conn.as_ref().map(|(_, root, _)| *root).expect("connected above");
                (x::Drawable::Window(root), x, y, width, height)
            }
            X11Target::Window(id) => {
                let (width, height) = self.window_size(id)?;
                (x::Drawable::Window(xcb::XidNew::new(id)), 0, 0, width, height)
            }
        };
        let (conn, _, layout) = self.conn.as_ref().expect("connected above");
        let cookie = conn.send_request(&x::GetImage {
            format: x::ImageFormat::ZPixmap,
            drawable,
            x,
            y,
            width,
            height,
            plane_mask: u32::MAX,
        });
        let image = conn.wait_for_reply(cookie).map_err(|e| x_error("screen capture failed", e))?;
        let pixels = image.data();
        let count = usize::from(width) * usize::from(height);
        if pixels.len() < count * 4 {
            return Err(MediaError::Device(format!(
                "screen capture failed: {} bytes for {width}x{height} pixels",
                pixels.len()
            )));
        }
        out.width = u32::from(width);
        out.height = u32::from(height);
        out.data.clear();
        out.data.reserve(count * 3);
        for px in pixels[..count * 4].chunks_exact(4) {
            out.data.extend_from_slice(&[px[layout.red], px[layout.green], px[layout.blue]]);
        }
        out.capture_ts_us = now_us();
        Ok(())
    }

    fn describe(&self) -> String {
        match self.target {
            X11Target::Area { .. } => format!("screen {}", self.name),
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

    impl Xvfb {
        fn start(width: u16, height: u16) -> Self {
            // -displayfd 1: the server picks a free display and writes its number to stdout
            // once it accepts connections.
            let mut child = Command::new("Xvfb")
                .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0", &format!("{width}x{height}x24")])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb (scripts/install-deps.sh installs it)");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("Xvfb's display number");
            let number: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb printed {line:?}"));
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
    fn a_screen_area_is_captured_exactly_capture_after_capture() {
        let xvfb = Xvfb::start(320, 240);
        let _painter = paint_root(&xvfb.display, 320, 240);
        let whole = X11Target::Area { x: 0, y: 0, width: 320, height: 240 };
        let mut capture = X11Capture::open(Some(&xvfb.display), whole, "test").unwrap();
        assert_eq!(capture.describe(), "screen test");
        let mut frame = RgbFrame::default();
        for _ in 0..30 {
            capture.next_frame(&mut frame).expect("every capture on one connection succeeds");
        }
        assert_eq!((frame.width, frame.height), (320, 240));
        let expected: Vec<u8> = (0..240).flat_map(|y| (0..320).flat_map(move |x| colour_at(x, y))).collect();
        let first_wrong = frame.data.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            frame.data == expected,
            "the capture is the painted picture; first difference at byte {first_wrong:?}: {:?} for {:?}",
            first_wrong.map(|i| &frame.data[i / 3 * 3..i / 3 * 3 + 3]),
            first_wrong.map(|i| &expected[i / 3 * 3..i / 3 * 3 + 3])
        );

        // A second monitor to the right and below: its own part of the root window.
        let part = X11Target::Area { x: 200, y: 100, width: 64, height: 48 };
        let mut capture = X11Capture::open(Some(&xvfb.display), part, "right").unwrap();
        capture.next_frame(&mut frame).unwrap();
        assert_eq!((frame.width, frame.height), (64, 48));
        let expected: Vec<u8> = (100..148).flat_map(|y| (200..264).flat_map(move |x| colour_at(x, y))).collect();
        assert!(frame.data == expected, "the capture is the monitor's part");
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
        match X11Capture::open(Some(":9999"), X11Target::Area { x: 0, y: 0, width: 1, height: 1 }, "none") {
            Err(MediaError::Device(why)) => assert!(why.contains("cannot connect to X"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
