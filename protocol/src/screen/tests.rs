//! Change detection, slicing, tile packing and the receiver's stale-tile bookkeeping, driven
//! with pictures made here and a simulated clock. The JPEG step is left out: the "image" of a
//! slice is its raw atlas, so a composed canvas can be compared with the source exactly.

use super::*;

const BPP: usize = 3;
/// The receiver's round trip in these tests (a repair waits 200 ms before it is asked again).
const RTT: Option<Duration> = Some(Duration::from_millis(50));
const NONE: [TileSpan; RECENT_SPANS] = [TileSpan { first: 0, end: 0 }; RECENT_SPANS];

/// A small deterministic generator (xorshift64*), for pictures and loss.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

fn picture(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..width * height * BPP as u32).map(|_| rng.next() as u8).collect()
}

/// Paints a `w × h` rectangle at `x, y` a flat colour.
fn paint(pic: &mut [u8], width: u32, (x, y, w, h): (u32, u32, u32, u32), colour: u8) {
    for row in y..y + h {
        for col in x..x + w {
            let i = (row * width + col) as usize * BPP;
            pic[i..i + BPP].fill(colour);
        }
    }
}

#[test]
fn a_1080p_grid_has_8160_tiles_and_its_full_atlas_is_the_padded_picture() {
    let grid = TileGrid::new(1920, 1080).unwrap();
    assert_eq!((grid.cols, grid.rows, grid.tile_count()), (120, 68, 8160));
    assert_eq!(grid.atlas_size(grid.tile_count()), (1920, 1088));
    assert_eq!(grid.atlas_size(3), (48, 16));
    assert_eq!(grid.atlas_size(121), (1920, 32));
    // The last row is cut at 1080: 1080 - 67 * 16 = 8 pixels.
    assert_eq!(grid.tile_rect(8159), (1904, 1072, 16, 8));
    assert!(TileGrid::new(0, 10).is_err());
    assert!(TileGrid::new(MAX_SCREEN_WIDTH + 1, 10).is_err());
}

#[test]
fn packed_tiles_land_back_where_they_came_from() {
    // 50 × 37 leaves cut tiles on the right and at the bottom.
    let (w, h) = (50, 37);
    let grid = TileGrid::new(w, h).unwrap();
    let source = picture(w, h, 7);
    let tiles = [0, 3, 4, 7, 11];
    let mut atlas = Vec::new();
    let (aw, ah) = pack_tiles(&source, BPP, &grid, &tiles, &mut atlas).unwrap();
    assert_eq!((aw, ah), (64, 32), "4 columns (the grid's), 2 rows");
    let mut canvas = vec![0u8; source.len()];
    blit_tiles(&atlas, aw, ah, BPP, &grid, tiles.iter().copied(), &mut canvas).unwrap();
    for tile in 0..grid.tile_count() {
        let (x, y, tw, th) = grid.tile_rect(tile);
        for row in y..y + th {
            let start = (row * w + x) as usize * BPP;
            let end = start + tw as usize * BPP;
            if tiles.contains(&tile) {
                assert_eq!(canvas[start..end], source[start..end], "tile {tile} row {row}");
            } else {
                assert!(canvas[start..end].iter().all(|b| *b == 0), "tile {tile} untouched");
            }
        }
    }
    // Tile 3 is 2 pixels wide (48..50): its padding repeats its last column.
    let slot = 1;
    let (ax, ay) = (slot * 16, 0);
    let last = &source[(48 + 1) * BPP..(48 + 2) * BPP];
    let padded = &atlas[(ay * aw as usize + ax + 15) * BPP..(ay * aw as usize + ax + 16) * BPP];
    assert_eq!(padded, last);
    // An atlas too small for its tiles is refused, not read past its end.
    assert_eq!(blit_tiles(&atlas, aw, 16, BPP, &grid, tiles.iter().copied(), &mut canvas), Err(ScreenError::AtlasSize));
}

#[test]
fn slices_round_trip_and_bad_ones_are_refused() {
    let grid = TileGrid::new(64, 64).unwrap();
    let header = SliceHeader { full: false, update_id: 9, slice_index: 1, slice_count: 3, recent: NONE };
    let runs = [TileRun { first: 1, count: 2 }, TileRun { first: 8, count: 1 }];
    let mut bytes = Vec::new();
    encode_slice(&header, &runs, b"jpeg", &mut bytes);
    assert_eq!(bytes.len(), SLICE_HEADER_LEN + 2 * RUN_LEN + 4);
    let slice = ScreenSlice::decode(&bytes, &grid).unwrap();
    assert_eq!(slice.header, header);
    assert_eq!(slice.tiles().collect::<Vec<_>>(), [1, 2, 8]);
    assert_eq!(slice.jpeg, b"jpeg");

    let refused = |runs: &[TileRun], jpeg: &[u8], header: SliceHeader| {
        let mut b = Vec::new();
        encode_slice(&header, runs, jpeg, &mut b);
        ScreenSlice::decode(&b, &grid).map(|_| ())
    };
    let overlapping = [TileRun { first: 1, count: 2 }, TileRun { first: 2, count: 1 }];
    assert_eq!(refused(&overlapping, b"j", header), Err(ScreenError::Runs));
    assert_eq!(refused(&[TileRun { first: 15, count: 2 }], b"j", header), Err(ScreenError::Runs));
    assert_eq!(refused(&[TileRun { first: 0, count: 0 }], b"j", header), Err(ScreenError::Runs));
    assert_eq!(refused(&[], b"j", header), Err(ScreenError::Runs));
    assert_eq!(refused(&runs, b"", header), Err(ScreenError::NoImage));
    assert_eq!(refused(&runs, b"j", SliceHeader { slice_index: 3, ..header }), Err(ScreenError::SliceIndex));
    let mut wrong_tile = bytes.clone();
    wrong_tile[9] = 32;
    assert_eq!(ScreenSlice::decode(&wrong_tile, &grid), Err(ScreenError::TileSize(32)));
    for cut in 0..SLICE_HEADER_LEN + 2 * RUN_LEN {
        assert!(ScreenSlice::decode(&bytes[..cut], &grid).is_err(), "cut at {cut}");
    }
}

#[test]
fn slicing_keeps_runs_and_order() {
    let tiles = [0, 1, 2, 5, 6, 9];
    let slices = slice_runs(&tiles, 4);
    assert_eq!(
        slices,
        vec![
            vec![TileRun { first: 0, count: 3 }, TileRun { first: 5, count: 1 }],
            vec![TileRun { first: 6, count: 1 }, TileRun { first: 9, count: 1 }],
        ]
    );
}

#[test]
fn a_still_screen_sends_only_the_refresh_band_which_sweeps_it_in_the_period() {
    let (w, h) = (320, 160);
    let grid = TileGrid::new(w, h).unwrap();
    let pic = picture(w, h, 3);
    let mut sender =
        ScreenSender::new(ScreenSenderConfig { refresh_period: Duration::from_secs(10), ..Default::default() });
    let t0 = Instant::now();
    let first = sender.plan(t0, &pic, w, h, BPP).unwrap();
    assert!(first.full);
    assert_eq!(first.tiles.len() as u32, grid.tile_count());
    let mut swept = std::collections::BTreeSet::new();
    let mut sent = 0;
    // 5 captures a second for 10 s: every tile once, 200 tiles in all, a second's worth
    // (20 tiles) every fifth capture and nothing in between.
    let mut updates = 0;
    for i in 1..=50 {
        let Some(plan) = sender.plan(t0 + Duration::from_millis(200 * i), &pic, w, h, BPP) else { continue };
        assert!(!plan.full);
        assert_eq!(plan.changed, 0);
        assert_eq!(plan.tiles.len(), 20);
        updates += 1;
        sent += plan.tiles.len();
        swept.extend(plan.tiles);
    }
    assert_eq!(updates, 10);
    assert_eq!(sent, 200);
    assert_eq!(swept.len(), 200);
}

#[test]
fn a_changed_pixel_sends_its_tile_and_requested_tiles_ride_along() {
    let (w, h) = (320, 160);
    let mut pic = picture(w, h, 4);
    let mut sender =
        ScreenSender::new(ScreenSenderConfig { refresh_period: Duration::from_secs(3600), ..Default::default() });
    let t0 = Instant::now();
    sender.plan(t0, &pic, w, h, BPP).unwrap();
    assert_eq!(sender.plan(t0 + Duration::from_millis(100), &pic, w, h, BPP), None, "nothing changed");
    // One pixel at (40, 20): tile column 2, row 1 of a 20-column grid.
    paint(&mut pic, w, (40, 20, 1, 1), 0);
    sender.request_tiles(&[TileRun { first: 100, count: 3 }, TileRun { first: 199, count: 10 }]);
    let plan = sender.plan(t0 + Duration::from_millis(200), &pic, w, h, BPP).unwrap();
    assert_eq!(plan.changed, 1);
    assert_eq!(plan.tiles, [22, 100, 101, 102, 199], "past the grid is ignored");
    assert!((plan.changed_fraction() - 1.0 / 200.0).abs() < 1e-9);
    // A new size starts over with a full update.
    let small = picture(160, 160, 5);
    let plan = sender.plan(t0 + Duration::from_millis(300), &small, 160, 160, BPP).unwrap();
    assert!(plan.full);
    assert_eq!(plan.tiles.len(), 100);
}

/// A slice as the receiver would get it, with its atlas as the "JPEG".
fn slice_bytes(pic: &[u8], grid: &TileGrid, header: SliceHeader, runs: &[TileRun]) -> Vec<u8> {
    let tiles: Vec<u32> =
        runs.iter().flat_map(|r| u32::from(r.first)..u32::from(r.first) + u32::from(r.count)).collect();
    let mut atlas = Vec::new();
    pack_tiles(pic, BPP, grid, &tiles, &mut atlas).unwrap();
    let mut out = Vec::new();
    encode_slice(&header, runs, &atlas, &mut out);
    out
}

#[test]
fn a_late_joiner_asks_for_everything_and_a_gap_makes_only_its_range_stale() {
    let grid = TileGrid::new(160, 160).unwrap(); // 100 tiles
    let t0 = Instant::now();
    let mut rx = ScreenReceiver::new();
    let pic = picture(160, 160, 1);
    let delta = SliceHeader { full: false, update_id: 7, slice_index: 0, slice_count: 1, recent: NONE };
    let bytes = slice_bytes(&pic, &grid, delta, &[TileRun { first: 10, count: 2 }]);
    let slice = ScreenSlice::decode(&bytes, &grid).unwrap();
    assert_eq!(rx.on_slice(t0, 50, grid, &slice), Some(true));
    assert_eq!(rx.stale_tiles(), 98);
    assert!(!rx.has_picture());
    let ask = rx.poll_refresh(t0, RTT).unwrap();
    assert_eq!(ask, [TileRun { first: 0, count: 10 }, TileRun { first: 12, count: 88 }]);
    assert_eq!(rx.poll_refresh(t0 + Duration::from_millis(100), RTT), None, "one request per retry period");

    // The full update, in two slices, with frame ids following on.
    for (i, runs) in [[TileRun { first: 0, count: 50 }], [TileRun { first: 50, count: 50 }]].iter().enumerate() {
        let header = SliceHeader { full: true, update_id: 8, slice_index: i as u16, slice_count: 2, recent: NONE };
        let bytes = slice_bytes(&pic, &grid, header, runs);
        let slice = ScreenSlice::decode(&bytes, &grid).unwrap();
        assert_eq!(rx.on_slice(t0 + Duration::from_millis(60), 51 + i as u32, grid, &slice), Some(false));
    }
    assert!(rx.is_whole() && rx.has_picture());
    assert_eq!(rx.poll_refresh(t0 + Duration::from_secs(5), RTT), None);

    // Frames 53..=55 carry tiles 5, 20 and 40; 54 is lost. Frame 55 says the slice before it
    // spanned tiles 20..21: that tile alone turns stale.
    let t1 = t0 + Duration::from_secs(1);
    let span = |first, end| TileSpan { first, end };
    let header = |recent: [TileSpan; RECENT_SPANS]| SliceHeader {
        full: false,
        update_id: 9,
        slice_index: 0,
        slice_count: 1,
        recent,
    };
    let b = slice_bytes(&pic, &grid, header(NONE), &[TileRun { first: 5, count: 1 }]);
    rx.on_slice(t1, 53, grid, &ScreenSlice::decode(&b, &grid).unwrap());
    let recent = [span(20, 21), span(5, 6), span(50, 100), span(0, 50)];
    let b = slice_bytes(&pic, &grid, header(recent), &[TileRun { first: 40, count: 1 }]);
    rx.on_slice(t1, 55, grid, &ScreenSlice::decode(&b, &grid).unwrap());
    assert_eq!(rx.stale_tiles(), 1, "tile 20");
    assert_eq!(rx.poll_refresh(t1, RTT), Some(vec![TileRun { first: 20, count: 1 }]));
    // The lost slice turns up late: dropped, it is older than what was applied.
    let b = slice_bytes(&pic, &grid, header(NONE), &[TileRun { first: 20, count: 1 }]);
    assert_eq!(rx.on_slice(t1, 54, grid, &ScreenSlice::decode(&b, &grid).unwrap()), None);
    assert_eq!(rx.late_slices, 1);

    // Two lost (56, 57): both spans named by 58 turn stale.
    let recent = [span(60, 64), span(30, 32), span(40, 41), span(20, 21)];
    let b = slice_bytes(&pic, &grid, header(recent), &[TileRun { first: 70, count: 1 }]);
    rx.on_slice(t1 + Duration::from_millis(100), 58, grid, &ScreenSlice::decode(&b, &grid).unwrap());
    assert_eq!(rx.stale_tiles(), 1 + 4 + 2);
    // Five lost in a row: more than the spans a slice names, so every tile may be stale.
    let b = slice_bytes(&pic, &grid, header(NONE), &[TileRun { first: 0, count: 10 }]);
    rx.on_slice(t1 + Duration::from_millis(200), 64, grid, &ScreenSlice::decode(&b, &grid).unwrap());
    assert_eq!(rx.stale_tiles(), 90);
    assert!(rx.has_picture(), "every tile arrived once: the canvas still shows, some of it old");
}

#[test]
fn undrawn_tiles_turn_stale_and_a_late_slice_of_the_old_size_resets_nothing() {
    let grid = TileGrid::new(160, 160).unwrap(); // 100 tiles
    let pic = picture(160, 160, 9);
    let t0 = Instant::now();
    let mut rx = ScreenReceiver::new();
    let full = SliceHeader { full: true, update_id: 0, slice_index: 0, slice_count: 1, recent: NONE };
    let b = slice_bytes(&pic, &grid, full, &[TileRun { first: 0, count: 100 }]);
    rx.on_slice(t0, 10, grid, &ScreenSlice::decode(&b, &grid).unwrap());
    assert!(rx.is_whole());
    rx.on_tiles_lost(t0, &[3, 4, 500]);
    assert_eq!(rx.stale_tiles(), 2, "tiles past the grid are ignored");
    assert_eq!(rx.poll_refresh(t0, RTT), Some(vec![TileRun { first: 3, count: 2 }]));
    // A slice of another size, older than what was applied, is late: the picture stays.
    let small = TileGrid::new(64, 64).unwrap();
    let b = slice_bytes(&picture(64, 64, 1), &small, full, &[TileRun { first: 0, count: 16 }]);
    assert_eq!(rx.on_slice(t0, 9, small, &ScreenSlice::decode(&b, &small).unwrap()), None);
    assert_eq!(rx.grid(), Some(grid));
    assert_eq!(rx.stale_tiles(), 2);
}

#[test]
fn many_stale_spots_are_asked_for_in_at_most_thirty_two_ranges() {
    let grid = TileGrid::new(320, 320).unwrap(); // 400 tiles
    let pic = picture(320, 320, 2);
    let t0 = Instant::now();
    let mut rx = ScreenReceiver::new();
    // Every third tile arrives: 133 stale runs.
    let runs: Vec<TileRun> = (0..400).step_by(3).map(|t| TileRun { first: t as u16, count: 1 }).collect();
    let header = SliceHeader { full: false, update_id: 0, slice_index: 0, slice_count: 1, recent: NONE };
    let b = slice_bytes(&pic, &grid, header, &runs);
    rx.on_slice(t0, 0, grid, &ScreenSlice::decode(&b, &grid).unwrap());
    let ask = rx.poll_refresh(t0, RTT).unwrap();
    assert!(ask.len() <= MAX_REFRESH_RANGES);
    let covered: u32 = ask.iter().map(|r| u32::from(r.count)).sum();
    assert!(covered >= rx.stale_tiles());
    for t in 0..400u32 {
        if t % 3 != 0 {
            assert!(ask.iter().any(|r| (u32::from(r.first)..u32::from(r.first) + u32::from(r.count)).contains(&t)));
        }
    }
}

#[test]
fn requested_tiles_cost_at_most_a_screen_a_second_and_none_is_forgotten() {
    let (w, h) = (320, 160); // 200 tiles
    let mut pic = picture(w, h, 6);
    let mut sender =
        ScreenSender::new(ScreenSenderConfig { refresh_period: Duration::from_secs(3600), ..Default::default() });
    let t0 = Instant::now();
    assert!(sender.plan(t0, &pic, w, h, BPP).unwrap().full);
    let everything = [TileRun { first: 0, count: 200 }];
    // A receiver that lost it all asks for everything, again and again, every 100 ms.
    let mut sent = vec![0u32; 200];
    let mut granted_in_first_second = 0;
    for step in 1..=30u32 {
        let now = t0 + Duration::from_millis(100) * step;
        sender.request_tiles(&everything);
        if let Some(plan) = sender.repair(now) {
            assert!(plan.tiles.windows(2).all(|p| p[0] < p[1]), "sorted");
            for &tile in &plan.tiles {
                sent[tile as usize] += 1;
            }
            if step <= 10 {
                granted_in_first_second += plan.tiles.len();
            }
        }
    }
    // One screen banked and one screen's worth a second.
    assert!(granted_in_first_second <= 200 + 200, "{granted_in_first_second} tiles in a second");
    assert!(granted_in_first_second >= 350, "the budget is spent, not withheld ({granted_in_first_second})");
    assert!(sender.repairs_deferred > 0);
    let (least, most) = (sent.iter().min().unwrap(), sent.iter().max().unwrap());
    assert!(*least >= 3 && most - least <= 1, "tiles held back go first next time: {least}..{most}");

    // A tile the update sends anyway (it changed) costs nothing from the budget.
    let spent = t0 + Duration::from_millis(3050);
    sender.request_tiles(&everything);
    assert!(sender.repair(spent).is_some_and(|p| p.tiles.len() < 200), "the budget is spent");
    paint(&mut pic, w, (0, 0, 16, 16), 1);
    sender.request_tiles(&[TileRun { first: 0, count: 1 }]);
    let plan = sender.plan(spent, &pic, w, h, BPP).unwrap();
    assert_eq!(plan.changed, 1);
    assert!(plan.tiles.contains(&0));
}

#[test]
fn a_tile_is_asked_again_once_its_repair_could_have_come_or_was_lost() {
    assert_eq!(repair_wait(None), REPAIR_WAIT_UNKNOWN_RTT);
    assert_eq!(repair_wait(Some(Duration::from_millis(10))), REFRESH_RETRY);
    let slow = Some(Duration::from_millis(300));
    assert_eq!(repair_wait(slow), Duration::from_millis(700));

    let grid = TileGrid::new(160, 160).unwrap(); // 100 tiles
    let pic = picture(160, 160, 3);
    let t0 = Instant::now();
    let mut rx = ScreenReceiver::new();
    let full = SliceHeader { full: true, update_id: 0, slice_index: 0, slice_count: 1, recent: NONE };
    let b = slice_bytes(&pic, &grid, full, &[TileRun { first: 0, count: 100 }]);
    rx.on_slice(t0, 0, grid, &ScreenSlice::decode(&b, &grid).unwrap());
    let ms = Duration::from_millis;
    rx.on_tiles_lost(t0, &[3]);
    assert_eq!(rx.poll_refresh(t0, slow), Some(vec![TileRun { first: 3, count: 1 }]));
    rx.on_tiles_lost(t0 + ms(250), &[7]);
    assert_eq!(rx.poll_refresh(t0 + ms(250), slow), Some(vec![TileRun { first: 7, count: 1 }]), "3 is on its way");
    assert_eq!(rx.poll_refresh(t0 + ms(500), slow), None, "both are on their way");
    assert_eq!(rx.poll_refresh(t0 + ms(700), slow), Some(vec![TileRun { first: 3, count: 1 }]), "3 is overdue");
    // Tile 7's repair is lost (the next slices name it): asked again at once.
    rx.on_tiles_lost(t0 + ms(900), &[7]);
    assert_eq!(rx.poll_refresh(t0 + ms(900), slow), Some(vec![TileRun { first: 7, count: 1 }]));
    assert_eq!(rx.refreshes_requested, 4);
}

/// A share over a lossy path, end to end but for the JPEG: a sender whose picture changes
/// (typing, then a new slide), slices of a few tiles, 10 % of slices lost, refresh requests
/// carried back (and sometimes lost too) with a round trip of 60 ms. The receiver's canvas
/// is whole again soon after every loss and never has a tile stale for 3 s; once the loss
/// stops, it equals the sender's picture exactly.
#[test]
fn a_lossy_share_is_repaired_by_refresh_requests_and_ends_equal() {
    let (w, h) = (640, 360);
    let mut pic = picture(w, h, 11);
    let mut sender = ScreenSender::new(ScreenSenderConfig::default());
    let mut rx = ScreenReceiver::new();
    let mut canvas: Vec<u8> = Vec::new();
    let mut rng = Rng(0x5eed);
    let t0 = Instant::now();
    let mut frame_id = 0u32;
    let mut pending_requests: Vec<(Instant, Vec<TileRun>)> = Vec::new();
    let mut recent = RecentSpans::default();
    let tick = Duration::from_millis(200);
    let mut worst_stale = Duration::ZERO;
    for i in 0..150u32 {
        let now = t0 + tick * i;
        let lossy = i < 120;
        // Typing: a character a tick along a line; a new slide every 5 s.
        paint(&mut pic, w, (8 + (i % 60) * 10, 100 + (i / 60) * 20, 8, 12), (i * 7) as u8);
        if i % 25 == 24 {
            pic = picture(w, h, 100 + u64::from(i));
        }
        for (due, runs) in std::mem::take(&mut pending_requests) {
            if due <= now {
                sender.request_tiles(&runs);
            } else {
                pending_requests.push((due, runs));
            }
        }
        let Some(plan) = sender.plan(now, &pic, w, h, BPP) else { continue };
        let slices = slice_runs(&plan.tiles, 40);
        let count = slices.len() as u16;
        for (index, runs) in slices.iter().enumerate() {
            let header = SliceHeader {
                full: plan.full,
                update_id: plan.update_id,
                slice_index: index as u16,
                slice_count: count,
                recent: recent.current(),
            };
            recent.sent(runs);
            let bytes = slice_bytes(&pic, &plan.grid, header, runs);
            let id = frame_id;
            frame_id = frame_id.wrapping_add(1);
            if lossy && rng.chance(0.10) {
                continue;
            }
            let at = now + Duration::from_millis(30);
            let slice = ScreenSlice::decode(&bytes, &plan.grid).unwrap();
            if let Some(reset) = rx.on_slice(at, id, plan.grid, &slice) {
                if reset {
                    canvas = vec![0; (w * h) as usize * BPP];
                }
                let (aw, ah) = plan.grid.atlas_size(slice.tile_count());
                blit_tiles(slice.jpeg, aw, ah, BPP, &plan.grid, slice.tiles(), &mut canvas).unwrap();
            }
        }
        let after = now + Duration::from_millis(40);
        worst_stale = worst_stale.max(rx.stale_for(after));
        if let Some(runs) = rx.poll_refresh(after, RTT) {
            if !(lossy && rng.chance(0.10)) {
                pending_requests.push((after + Duration::from_millis(30), runs));
            }
        }
    }
    assert!(rx.has_picture());
    assert!(rx.is_whole(), "{} tiles still stale", rx.stale_tiles());
    assert!(rx.refreshes_requested > 5, "loss was repaired by asking ({})", rx.refreshes_requested);
    assert!(worst_stale < Duration::from_secs(3), "a tile stayed stale {worst_stale:?}");
    assert!(rx.longest_stale < Duration::from_secs(3));
    assert!(canvas == pic, "the canvas ends equal to the sender's picture");
}
