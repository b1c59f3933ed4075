//! The audio callbacks allocate nothing: a counting global allocator counts every allocation,
//! reallocation and free made on a thread while it is inside one of our cpal data callbacks
//! (marked through `set_audio_callback_probe`), while the real output and input streams run
//! against a private PulseAudio null sink.
//!
//! The callbacks take no lock by construction: they touch only the lock-free `ringbuf` ring
//! and relaxed atomics (see `client_core::media` devices). Allocation is what can be observed
//! from outside, and it is the usual way a lock sneaks in too (the allocator's own).

mod media_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protocol::jitter::FRAME_SAMPLES;

use client_core::media::{set_audio_callback_probe, AudioSink, AudioSource, MicSource, SpeakerSink, ToneSource};

struct CountingAllocator;

static IN_CALLBACK_EVENTS: AtomicU64 = AtomicU64::new(0);
static CALLBACKS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised with no destructor: reading it never allocates, so it is safe to use
    // from inside the allocator.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn note_if_in_callback() {
    if IN_CALLBACK.try_with(Cell::get).unwrap_or(false) {
        IN_CALLBACK_EVENTS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: delegates every operation to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_if_in_callback();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_if_in_callback();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_if_in_callback();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_if_in_callback();
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn probe(entering: bool) {
    if entering {
        CALLBACKS.fetch_add(1, Ordering::Relaxed);
    }
    let _ = IN_CALLBACK.try_with(|flag| flag.set(entering));
}

#[test]
fn audio_callbacks_do_not_allocate() {
    assert!(set_audio_callback_probe(probe));
    // The probe itself must be able to see an allocation, or a zero below would mean nothing.
    probe(true);
    let witness = std::hint::black_box(vec![1u8; 64]);
    probe(false);
    drop(witness);
    assert!(IN_CALLBACK_EVENTS.swap(0, Ordering::Relaxed) >= 1, "the counting allocator does not count");
    CALLBACKS.store(0, Ordering::Relaxed);

    let pulse = media_common::PulseNullSink::start();
    let mut speaker = SpeakerSink::open(None).unwrap_or_else(|e| panic!("speaker: {e}\n{}", pulse.log()));
    let mut mic = MicSource::open(None).unwrap_or_else(|e| panic!("microphone: {e}\n{}", pulse.log()));
    let capture = std::thread::spawn(move || {
        let mut frame = [0i16; FRAME_SAMPLES];
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1200) {
            mic.read_frame(&mut frame).expect("microphone frame");
        }
        mic
    });
    let mut tone = ToneSource::new(440.0, 0.5);
    let mut frame = [0i16; FRAME_SAMPLES];
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1200) {
        tone.read_frame(&mut frame).unwrap();
        speaker.write_frame(&frame).expect("speaker frame");
    }
    let mic = capture.join().expect("capture thread");
    let (speaker_stats, mic_stats) = (speaker.stats(), mic.stats());
    drop(speaker);
    drop(mic);
    drop(pulse);

    let callbacks = CALLBACKS.load(Ordering::Relaxed);
    let events = IN_CALLBACK_EVENTS.load(Ordering::Relaxed);
    eprintln!("{callbacks} callbacks, {events} allocator calls inside them\n{speaker_stats:?}\n{mic_stats:?}");
    assert!(speaker_stats.callbacks > 20, "playback callbacks did not run: {speaker_stats:?}");
    assert!(mic_stats.callbacks > 20, "capture callbacks did not run: {mic_stats:?}");
    // The streams ran on between reading their stats and being dropped, so the probe saw at least as many.
    assert!(callbacks >= speaker_stats.callbacks + mic_stats.callbacks, "the probe missed callbacks");
    assert_eq!(events, 0, "{events} allocations/frees inside {callbacks} audio callbacks");
}
