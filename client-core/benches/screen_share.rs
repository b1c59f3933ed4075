//! Screen sharing's costs and fidelity, printed as figures (`cargo bench -p client-core --bench
//! screen_share`): what the real coding path ([`ScreenSender`] + [`ScreenEncoder`]) sends for a
//! still screen, for typing and for a full-screen video, how faithful the composed picture is
//! (PSNR, and SSIM for small text), and how long capture and coding take per frame at 1080p.
//!
//! The pictures are the synthetic slides (12-pixel glyph "text", a character typed every
//! 150 ms), a text page drawn with real 11–12 px strokes-like glyphs for SSIM, and a moving test
//! pattern for video. With `DISPLAY` set (e.g. under `xvfb-run -a -s "-screen 0 1920x1080x24"`)
//! the X11 screen is also captured through the share's own path to time a real capture, and the text page is
//! put on that screen (as its background) so its SSIM is measured through a real capture;
//! without it those rows are skipped and say so.

use std::time::{Duration, Instant};

use client_core::media::{
    psnr_rgb_rgba, DecodedFrame, RgbFrame, ScreenEncoder, SyntheticSlides, TestPattern, VideoDecoder, VideoEncoder,
    VideoSource, TYPING_PERIOD_US,
};
use protocol::quality::{LADDER, SCREEN_LADDER};
use protocol::screen::{
    blit_tiles, ScreenReceiver, ScreenSender, ScreenSenderConfig, ScreenSlice, UpdatePlan, TILE_SIZE,
};

const T0_US: u64 = 1_765_000_000_000_000;

/// Decodes an update's slices onto an RGBA canvas.
fn compose(slices: &[Vec<u8>], plan: &UpdatePlan, canvas: &mut [u8], decoder: &mut VideoDecoder) {
    let mut atlas = DecodedFrame::default();
    for bytes in slices {
        let slice = ScreenSlice::decode(bytes, &plan.grid).expect("a slice we made");
        decoder.decode(slice.jpeg, &mut atlas).expect("decodes");
        let (aw, ah) = plan.grid.atlas_size(slice.tile_count());
        blit_tiles(&atlas.rgba, aw, ah, 4, &plan.grid, slice.tiles(), canvas).expect("fits");
    }
}

fn bytes_of(slices: &[Vec<u8>]) -> usize {
    // What goes on the wire per slice besides its plaintext: the seal and, per fragment of at
    // most 1,142 bytes, a 34-byte header and a 24-byte trailer.
    slices.iter().map(|s| s.len() + 28 + (s.len() + 28).div_ceil(1142) * 58).sum()
}

/// Mean SSIM of the luma of two pictures over 8 × 8 windows (Wang et al. 2004, with the
/// usual constants for 8-bit pictures).
fn ssim(rgb: &[u8], rgba: &[u8], width: usize, height: usize) -> f64 {
    let luma = |p: &[u8]| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    let a: Vec<f64> = rgb.chunks_exact(3).map(luma).collect();
    let b: Vec<f64> = rgba.chunks_exact(4).map(luma).collect();
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut total, mut windows) = (0.0, 0.0);
    for y in (0..height - 7).step_by(4) {
        for x in (0..width - 7).step_by(4) {
            let (mut ma, mut mb) = (0.0, 0.0);
            for j in 0..8 {
                for i in 0..8 {
                    ma += a[(y + j) * width + x + i];
                    mb += b[(y + j) * width + x + i];
                }
            }
            ma /= 64.0;
            mb /= 64.0;
            let (mut va, mut vb, mut cov) = (0.0, 0.0, 0.0);
            for j in 0..8 {
                for i in 0..8 {
                    let (da, db) = (a[(y + j) * width + x + i] - ma, b[(y + j) * width + x + i] - mb);
                    va += da * da;
                    vb += db * db;
                    cov += da * db;
                }
            }
            let (va, vb, cov) = (va / 63.0, vb / 63.0, cov / 63.0);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            windows += 1.0;
        }
    }
    total / windows
}

/// A page of text-like lines: dark 1-pixel strokes in 6 × 9 cells with 12-pixel line pitch,
/// the density and stroke width of 11–12 px UI text (deterministic).
fn text_page(width: u32, height: u32) -> RgbFrame {
    let mut data = vec![255u8; (width * height * 3) as usize];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for line in 0..(height - 40) / 14 {
        let y0 = 20 + line * 14;
        let mut x = 20;
        while x + 7 < width - 20 {
            let bits = next();
            if bits % 7 == 0 {
                x += 7; // a space
                continue;
            }
            // A glyph: a few vertical and horizontal strokes, as letters have.
            for stroke in 0..3 {
                let s = (bits >> (stroke * 8)) as u32;
                let (sx, sy) = (x + s % 6, y0 + (s >> 3) % 9);
                for k in 0..(3 + s % 6) {
                    let (px, py) = if s & 0x40 != 0 { (sx, (sy + k).min(y0 + 9)) } else { ((sx + k).min(x + 5), sy) };
                    let i = ((py * width + px) * 3) as usize;
                    data[i..i + 3].copy_from_slice(&[20, 20, 20]);
                }
            }
            x += 7;
        }
    }
    RgbFrame { width, height, data, capture_ts_us: T0_US }
}

/// Puts `page` on the X11 screen as the root window's background (the server paints it, so
/// nothing can cover or repaint it), captures the screen through `screen` as a share does,
/// codes and composes the capture at the top rung, and compares both with `page`: the
/// captured size, SSIM of the capture, SSIM and PSNR of the composed picture.
fn text_on_screen(page: &RgbFrame, screen: &mut dyn VideoSource) -> Result<((u32, u32), f64, f64, f64), String> {
    use xcb::x;
    let (conn, screen_index) = xcb::Connection::connect(None).map_err(|e| format!("X connection: {e}"))?;
    let setup = conn.get_setup();
    let root_screen = setup.roots().nth(screen_index as usize).ok_or("no X screen")?;
    let (root, depth) = (root_screen.root(), root_screen.root_depth());
    if (u32::from(root_screen.width_in_pixels()), u32::from(root_screen.height_in_pixels()))
        != (page.width, page.height)
        || depth != 24
    {
        return Err(format!(
            "needs a {}x{} screen of depth 24 (xvfb-run -a -s \"-screen 0 {}x{}x24\")",
            page.width, page.height, page.width, page.height
        ));
    }
    let (width, height) = (page.width as u16, page.height as u16);
    let pixmap: x::Pixmap = conn.generate_id();
    conn.send_request(&x::CreatePixmap { depth, pid: pixmap, drawable: x::Drawable::Window(root), width, height });
    let gc: x::Gcontext = conn.generate_id();
    conn.send_request(&x::CreateGc { cid: gc, drawable: x::Drawable::Pixmap(pixmap), value_list: &[] });
    // Depth 24 is 32 bits per pixel, B G R x in memory; 32 rows per request stays under the
    // core protocol's 256 KiB request limit.
    let row_bytes = usize::from(width) * 3;
    for (band, rows) in page.data.chunks(row_bytes * 32).enumerate() {
        let data: Vec<u8> = rows.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0], 0]).collect();
        conn.send_request(&x::PutImage {
            format: x::ImageFormat::ZPixmap,
            drawable: x::Drawable::Pixmap(pixmap),
            gc,
            width,
            height: (rows.len() / row_bytes) as u16,
            dst_x: 0,
            dst_y: (band * 32) as i16,
            left_pad: 0,
            depth,
            data: &data,
        });
    }
    conn.send_request(&x::ChangeWindowAttributes { window: root, value_list: &[x::Cw::BackPixmap(pixmap)] });
    conn.send_request(&x::ClearArea { exposures: false, window: root, x: 0, y: 0, width: 0, height: 0 });
    // A round trip: every request above has been handled once its reply is here.
    conn.wait_for_reply(conn.send_request(&x::GetInputFocus {})).map_err(|e| format!("X: {e}"))?;

    let mut shot = RgbFrame::default();
    let mut captured = screen.next_frame(&mut shot);
    for _ in 0..3 {
        if captured.is_ok() {
            break;
        }
        captured = screen.next_frame(&mut shot);
    }
    captured.map_err(|e| format!("capture: {e}"))?;
    if (shot.width, shot.height) != (page.width, page.height) {
        return Err(format!("captured {}x{}, not the page's size", shot.width, shot.height));
    }
    let shot_rgba: Vec<u8> = shot.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let ssim_captured = ssim(&page.data, &shot_rgba, page.width as usize, page.height as usize);
    let top = SCREEN_LADDER[SCREEN_LADDER.len() - 1];
    let mut sender = ScreenSender::new(ScreenSenderConfig::default());
    let plan = sender.plan(Instant::now(), &shot.data, shot.width, shot.height, 3).ok_or("nothing to send")?;
    let mut slices = Vec::new();
    ScreenEncoder::new().encode(&plan, &shot.data, Some(top.jpeg_quality), &mut slices);
    let mut canvas = vec![0u8; shot.data.len() / 3 * 4];
    compose(&slices, &plan, &mut canvas, &mut VideoDecoder::with_limits(3840, 2176));
    Ok((
        (shot.width, shot.height),
        ssim_captured,
        ssim(&page.data, &canvas, page.width as usize, page.height as usize),
        psnr_rgb_rgba(&page.data, &canvas),
    ))
}

/// Sends `seconds` of captures at `fps` through the coding path; returns kbit/s on the wire
/// and the mean changed fraction.
fn stream_kbps(
    seconds: u32,
    fps: u32,
    quality: u8,
    mut picture_at: impl FnMut(u64, &mut RgbFrame),
    video_mode_from: Option<u32>,
) -> (f64, f64) {
    let mut sender = ScreenSender::new(ScreenSenderConfig::default());
    let mut coder = ScreenEncoder::new();
    let mut frame = RgbFrame::default();
    let t0 = Instant::now();
    let (mut bytes, mut changed, mut captures) = (0usize, 0.0, 0u32);
    let mut large = 0;
    let frames = seconds * fps;
    for i in 0..=frames {
        let at_us = u64::from(i) * 1_000_000 / u64::from(fps);
        picture_at(T0_US + at_us, &mut frame);
        let Some(plan) = sender.plan(t0 + Duration::from_micros(at_us), &frame.data, frame.width, frame.height, 3)
        else {
            continue;
        };
        large = if plan.changed_fraction() > 0.5 { large + 1 } else { 0 };
        let video = video_mode_from.is_some_and(|n| large >= n);
        let mut slices = Vec::new();
        coder.encode(&plan, &frame.data, if video { None } else { Some(quality) }, &mut slices);
        if i > 0 {
            // The first, full, update is the start, not the steady state.
            bytes += bytes_of(&slices);
            changed += plan.changed_fraction();
            captures += 1;
        }
    }
    (bytes as f64 * 8.0 / 1000.0 / f64::from(seconds), changed / f64::from(captures.max(1)))
}

/// A share over a path losing `loss` of the datagrams towards the receiver, on a simulated
/// clock: captures of the typing slides at 10 fps (a new slide every 6 s), slices through the
/// real coder in its lossy mode, a slice lost when any of its fragments is, refresh requests
/// polled every 50 ms and answered 40 ms later (20 ms each way) with a repair. Returns the
/// longest time a tile stayed stale once the picture was whole, and the slices sent.
fn lossy_share(loss: f64, seconds: u64) -> (Duration, usize) {
    /// Loses each fragment with probability `loss` (xorshift, fixed seed).
    struct Link {
        seed: u64,
        loss: f64,
    }
    impl Link {
        fn loses(&mut self, fragments: usize) -> bool {
            (0..fragments).fold(false, |lost, _| {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                lost | (((self.seed >> 11) as f64 / (1u64 << 53) as f64) < self.loss)
            })
        }
    }
    /// The receiving end: frame ids, the link, the receiver.
    struct End {
        link: Link,
        rx: ScreenReceiver,
        frame_id: u32,
        sent: usize,
    }
    impl End {
        fn deliver(&mut self, plan: &UpdatePlan, slices: &[Vec<u8>], at: Instant) {
            for bytes in slices {
                let id = self.frame_id;
                self.frame_id = self.frame_id.wrapping_add(1);
                self.sent += 1;
                if self.link.loses((bytes.len() + 28).div_ceil(1142)) {
                    continue;
                }
                let slice = ScreenSlice::decode(bytes, &plan.grid).expect("a slice we made");
                self.rx.on_slice(at, id, plan.grid, &slice);
            }
        }
    }
    let mut slides = SyntheticSlides::new();
    let mut frame = RgbFrame::default();
    let mut sender = ScreenSender::new(ScreenSenderConfig::default());
    let mut coder = ScreenEncoder::new();
    coder.set_lossy(true);
    let mut end =
        End { link: Link { seed: 0x1234_5678_9abc_def1, loss }, rx: ScreenReceiver::new(), frame_id: 0, sent: 0 };
    let t0 = Instant::now();
    let mut pending: Vec<(Duration, Vec<protocol::screen::TileRun>)> = Vec::new();
    let step = Duration::from_millis(10);
    let mut t = Duration::ZERO;
    while t < Duration::from_secs(seconds) {
        let now = t0 + t;
        if t.as_millis().is_multiple_of(100) {
            slides.render(T0_US + t.as_micros() as u64, &mut frame);
            if let Some(plan) = sender.plan(now, &frame.data, frame.width, frame.height, 3) {
                let mut slices = Vec::new();
                coder.encode(&plan, &frame.data, Some(90), &mut slices);
                end.deliver(&plan, &slices, now + Duration::from_millis(20));
            }
        }
        for (due, runs) in std::mem::take(&mut pending) {
            if due <= t {
                sender.request_tiles(&runs);
                if let Some(plan) = sender.repair(now) {
                    let pixels = sender.picture().to_vec();
                    let mut slices = Vec::new();
                    coder.encode(&plan, &pixels, Some(90), &mut slices);
                    end.deliver(&plan, &slices, now + Duration::from_millis(20));
                }
            } else {
                pending.push((due, runs));
            }
        }
        if t.as_millis().is_multiple_of(50) {
            if let Some(runs) = end.rx.poll_refresh(now, Some(Duration::from_millis(40))) {
                if !end.link.loses(1) {
                    pending.push((t + Duration::from_millis(20), runs));
                }
            }
        }
        t += step;
    }
    (end.rx.longest_stale, end.sent)
}

/// X11 captures timed (and counted when they fail).
const CAPTURES_TIMED: usize = 30;

fn main() {
    let top = SCREEN_LADDER[SCREEN_LADDER.len() - 1];
    let mut slides = SyntheticSlides::new();
    println!(
        "screen_share: synthetic slides 1920x1080 (12-px glyph text), ladder top {} q{}",
        top.name, top.jpeg_quality
    );

    // A full update at each rung, and its fidelity.
    let mut frame = RgbFrame::default();
    slides.render(T0_US, &mut frame);
    let mut scaler = VideoEncoder::new();
    for level in SCREEN_LADDER.iter().rev() {
        let (w, h, pixels) = scaler.scale_to_fit(&frame, level.width, level.height).unwrap();
        let pixels = pixels.to_vec();
        let mut sender = ScreenSender::new(ScreenSenderConfig::default());
        let plan = sender.plan(Instant::now(), &pixels, u32::from(w), u32::from(h), 3).unwrap();
        let mut slices = Vec::new();
        let started = Instant::now();
        ScreenEncoder::new().encode(&plan, &pixels, Some(level.jpeg_quality), &mut slices);
        let encode = started.elapsed();
        let mut canvas = vec![0u8; usize::from(w) * usize::from(h) * 4];
        let mut decoder = VideoDecoder::with_limits(3840, 2176);
        let started = Instant::now();
        compose(&slices, &plan, &mut canvas, &mut decoder);
        let decode = started.elapsed();
        println!(
            "  full update {:<11} {}x{} q{}: {} slices, {:.0} KB, PSNR {:.1} dB, encode {:.0} ms, decode+compose {:.0} ms",
            level.name,
            w,
            h,
            level.jpeg_quality,
            slices.len(),
            bytes_of(&slices) as f64 / 1000.0,
            psnr_rgb_rgba(&pixels, &canvas),
            encode.as_secs_f64() * 1000.0,
            decode.as_secs_f64() * 1000.0
        );
    }

    // Still, typing, video: the steady state at the top rung.
    let still = frame.clone();
    let (kbps, changed) = stream_kbps(20, u32::from(top.max_fps), top.jpeg_quality, |_, f| f.clone_from(&still), None);
    println!("  still screen (1080p, {} fps, 20 s): {kbps:.0} kbit/s, changed {:.4}", top.max_fps, changed);
    // Typing: a character every 150 ms on the same slide (the slides change every 6 s, so
    // stay within the first one: 5 s).
    let (kbps, changed) = stream_kbps(
        5,
        u32::from(top.max_fps),
        top.jpeg_quality,
        |ts, f| slides.render(T0_US - (T0_US % 6_000_000) + (ts - T0_US).min(5_900_000), f),
        None,
    );
    println!(
        "  typing (a character every {} ms, 5 s): {kbps:.0} kbit/s, changed {:.4}",
        TYPING_PERIOD_US / 1000,
        changed
    );
    // Full-screen video: the camera's moving test pattern scaled to 1080p.
    let mut pattern = TestPattern::new(854, 480);
    let mut cam = RgbFrame::default();
    let mut video_scaler = VideoEncoder::new();
    let (kbps, changed) = stream_kbps(
        5,
        u32::from(top.max_fps),
        top.jpeg_quality,
        |ts, f| {
            pattern.next_frame(&mut cam).unwrap();
            let pixels = video_scaler.scale(&cam, 1920, 1080).unwrap().to_vec();
            *f = RgbFrame { width: 1920, height: 1080, data: pixels, capture_ts_us: ts };
        },
        Some(3),
    );
    let screen_bits_per_pixel = kbps * 1000.0 / (1920.0 * 1080.0 * f64::from(top.max_fps));
    // The camera's 480p cost per pixel: its frames of the same pattern at its quality.
    let cam_level = LADDER[LADDER.len() - 1];
    let mut jpeg = Vec::new();
    let mut cam_bytes = 0usize;
    for _ in 0..20 {
        pattern.next_frame(&mut cam).unwrap();
        VideoEncoder::new().encode(&cam, cam_level.width, cam_level.height, cam_level.jpeg_quality, &mut jpeg).unwrap();
        cam_bytes += jpeg.len();
    }
    let cam_bits_per_pixel = cam_bytes as f64 * 8.0 / 20.0 / (f64::from(cam_level.width) * f64::from(cam_level.height));
    println!(
        "  full-screen video (1080p, {} fps): {kbps:.0} kbit/s, changed {changed:.2}: {:.3} bit/pixel vs the camera's 480p {:.3}",
        top.max_fps, screen_bits_per_pixel, cam_bits_per_pixel
    );

    // Small text: SSIM of the composed 1080p picture against the source.
    let page = text_page(1920, 1080);
    let mut sender = ScreenSender::new(ScreenSenderConfig::default());
    let plan = sender.plan(Instant::now(), &page.data, 1920, 1080, 3).unwrap();
    let mut slices = Vec::new();
    ScreenEncoder::new().encode(&plan, &page.data, Some(top.jpeg_quality), &mut slices);
    let mut canvas = vec![0u8; 1920 * 1080 * 4];
    compose(&slices, &plan, &mut canvas, &mut VideoDecoder::with_limits(3840, 2176));
    println!(
        "  small text page 1920x1080 q{}: SSIM {:.4}, PSNR {:.1} dB, {:.0} KB",
        top.jpeg_quality,
        ssim(&page.data, &canvas, 1920, 1080),
        psnr_rgb_rgba(&page.data, &canvas),
        bytes_of(&slices) as f64 / 1000.0
    );

    // Loss: how long a tile stays stale before its repair arrives.
    for loss in [0.02, 0.05, 0.10] {
        let (longest, slices) = lossy_share(loss, 30);
        println!(
            "  {:.0} % loss (simulated, 30 s of typing and slides at 1080p, 20 ms each way): longest stale tile {:.0} ms, {} slices",
            loss * 100.0,
            longest.as_secs_f64() * 1000.0,
            slices
        );
    }

    // Capture and code one 1080p frame: the X11 screen if there is one (the share's own path:
    // one long-lived X connection, media::x11_capture).
    if std::env::var_os("DISPLAY").is_some() {
        match client_core::media::open_screen(&client_core::media::ScreenChoice::Monitor(None)) {
            Ok(mut screen) => {
                let mut shot = RgbFrame::default();
                let mut times = Vec::new();
                let mut failed = 0;
                for _ in 0..CAPTURES_TIMED {
                    let started = Instant::now();
                    // A capture may fail for a moment, as the share thread allows.
                    match screen.next_frame(&mut shot) {
                        Ok(()) => times.push(started.elapsed()),
                        Err(e) => {
                            failed += 1;
                            println!("  X11 capture failed once: {e}");
                        }
                    }
                }
                times.sort();
                println!(
                    "  X11 capture {}x{} ({}): median {:.1} ms of {} captures, {failed} failed",
                    shot.width,
                    shot.height,
                    screen.describe(),
                    times.get(times.len() / 2).map_or(f64::NAN, |t| t.as_secs_f64() * 1000.0),
                    times.len()
                );
                // The known text page put on the screen, captured, coded and composed.
                match text_on_screen(&page, screen.as_mut()) {
                    Ok((captured, ssim_captured, ssim_composed, psnr_composed)) => println!(
                        "  small text page on the X11 screen, captured {}x{}: captured vs source SSIM {:.4}; composed (q{}) vs source SSIM {:.4}, PSNR {:.1} dB",
                        captured.0, captured.1, ssim_captured, top.jpeg_quality, ssim_composed, psnr_composed
                    ),
                    Err(e) => println!("  small text page on the X11 screen: {e}"),
                }
            }
            Err(e) => println!("  X11 capture: {e}"),
        }
    } else {
        println!("  X11 capture: skipped (no DISPLAY; run under xvfb-run -a -s \"-screen 0 1920x1080x24\")");
    }
    let mut sender = ScreenSender::new(ScreenSenderConfig::default());
    let mut coder = ScreenEncoder::new();
    let t0 = Instant::now();
    let mut times = Vec::new();
    for i in 0..20u64 {
        slides.render(T0_US + i * TYPING_PERIOD_US, &mut frame);
        let started = Instant::now();
        let plan = sender.plan(t0 + Duration::from_millis(100 * i), &frame.data, 1920, 1080, 3);
        let mut slices = Vec::new();
        if let Some(plan) = plan {
            coder.encode(&plan, &frame.data, Some(top.jpeg_quality), &mut slices);
        }
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "  compare + code one typing update at 1080p: median {:.1} ms (tile compare of 8,160 {}-px tiles included)",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        TILE_SIZE
    );
}
