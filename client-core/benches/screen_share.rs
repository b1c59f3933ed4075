//! Screen sharing's costs and fidelity, printed as figures (`cargo bench -p client-core --bench
//! screen_share`): what the real coding path ([`ScreenSender`] + [`ScreenEncoder`]) sends for a
//! still screen, for typing and for a full-screen video, how faithful the composed picture is
//! (PSNR, and SSIM for small text), and how long capture and coding take per frame at 1080p.
//!
//! The pictures are the synthetic slides (12-pixel glyph "text", a character typed every
//! 150 ms), a text page drawn with real 11–12 px strokes-like glyphs for SSIM, and a moving test
//! pattern for video. With `DISPLAY` set (e.g. under `xvfb-run -a -s "-screen 0 1920x1080x24"`)
//! the X11 screen is also captured through xcap to time a real capture; without it that row is
//! skipped and says so.

use std::time::{Duration, Instant};

use client_core::media::{
    DecodedFrame, RgbFrame, ScreenEncoder, SyntheticSlides, TestPattern, VideoDecoder, VideoEncoder, VideoSource,
    TYPING_PERIOD_US,
};
use protocol::quality::{LADDER, SCREEN_LADDER};
use protocol::screen::{blit_tiles, ScreenSender, ScreenSenderConfig, ScreenSlice, UpdatePlan, TILE_SIZE};

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

fn psnr(rgb: &[u8], rgba: &[u8]) -> f64 {
    let (mut sum, mut n) = (0f64, 0f64);
    for (a, b) in rgb.chunks_exact(3).zip(rgba.chunks_exact(4)) {
        for c in 0..3 {
            let d = f64::from(a[c]) - f64::from(b[c]);
            sum += d * d;
            n += 1.0;
        }
    }
    10.0 * (255.0 * 255.0 / (sum / n).max(1e-12)).log10()
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
            psnr(&pixels, &canvas),
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
        psnr(&page.data, &canvas),
        bytes_of(&slices) as f64 / 1000.0
    );

    // Capture and code one 1080p frame: the X11 screen through xcap if there is one.
    if std::env::var_os("DISPLAY").is_some() {
        match client_core::media::open_screen(&client_core::media::ScreenChoice::Monitor(None)) {
            Ok(mut screen) => {
                let mut shot = RgbFrame::default();
                let mut times = Vec::new();
                for _ in 0..10 {
                    let started = Instant::now();
                    screen.next_frame(&mut shot).unwrap();
                    times.push(started.elapsed());
                }
                times.sort();
                println!(
                    "  X11 capture {}x{} (xcap): median {:.1} ms",
                    shot.width,
                    shot.height,
                    times[times.len() / 2].as_secs_f64() * 1000.0
                );
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
