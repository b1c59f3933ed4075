//! The page's TypeScript types, generated from the shell's payload types with `ts-rs`.
//!
//! `ui/src/core/ipc-types.ts` is what [`generate`] prints, checked in so the page builds (and
//! CI's `npm run build` type-checks it) without running Rust first. The test below regenerates
//! it and fails when the checked-in file differs: a payload changed in Rust and the page has not
//! seen it. `PARLOR_WRITE_TS=1 cargo test -p parlor-app --lib typescript` (or `npm run gen:types`)
//! rewrites the file. `ui/src/core/types.ts` re-exports these and adds what only the page needs.

use std::path::PathBuf;

use ts_rs::{Config, TS};

use crate::error::{DeviceKind, ErrorCode};
use crate::payloads::*;

/// Declares one type as ts-rs's own file export does: its doc comment, then `export type`.
fn declare<T: TS>(cfg: &Config, out: &mut String) {
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    out.push_str("export ");
    out.push_str(&T::decl(cfg));
    out.push_str("\n\n");
}

/// The whole generated file.
pub fn generate() -> String {
    // The u64s the page gets are counters and byte counts far below 2^53 (request, file and
    // chat ids, sizes, timestamps in ms), so a JS number holds them exactly; JSON carries them
    // as plain numbers, never as bigint.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from src-tauri/src/payloads.rs and error.rs by src-tauri/src/typescript.rs.\n\
         // Do not edit: change the Rust types and run `npm run gen:types`.\n\n\
         /** A participant's id inside one meeting; also its UDP sender id. Never 0 (0 is the relay). */\n\
         export type ParticipantId = number;\n\n",
    );
    let out = &mut out;
    declare::<Participant>(&cfg, out);
    declare::<FileInfo>(&cfg, out);
    declare::<ChatMessage>(&cfg, out);
    declare::<Device>(&cfg, out);
    declare::<DeviceList>(&cfg, out);
    declare::<DeviceChoice>(&cfg, out);
    declare::<Settings>(&cfg, out);
    declare::<MeetingCreated>(&cfg, out);
    declare::<ChatSent>(&cfg, out);
    declare::<TransferStarted>(&cfg, out);
    declare::<ErrorCode>(&cfg, out);
    declare::<DeviceKind>(&cfg, out);
    declare::<ErrorPayload>(&cfg, out);
    declare::<KnockWithdrawal>(&cfg, out);
    declare::<JoinRefusal>(&cfg, out);
    declare::<LeaveReason>(&cfg, out);
    declare::<TransferDirection>(&cfg, out);
    declare::<ParticipantStats>(&cfg, out);
    declare::<StatsSnapshot>(&cfg, out);
    declare::<Waiting>(&cfg, out);
    declare::<Knock>(&cfg, out);
    declare::<KnockWithdrawn>(&cfg, out);
    declare::<JoinRefused>(&cfg, out);
    declare::<Joined>(&cfg, out);
    declare::<ParticipantWrap>(&cfg, out);
    declare::<ParticipantLeft>(&cfg, out);
    declare::<HostChanged>(&cfg, out);
    declare::<ChatWrap>(&cfg, out);
    declare::<FileOffer>(&cfg, out);
    declare::<FileProgress>(&cfg, out);
    declare::<FileDone>(&cfg, out);
    declare::<FileFailed>(&cfg, out);
    declare::<ActiveSpeaker>(&cfg, out);
    declare::<Disconnected>(&cfg, out);
    declare::<UiEvent>(&cfg, out);
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    std::mem::take(out)
}

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/core/ipc-types.ts")
}

#[test]
fn the_checked_in_typescript_types_are_the_generated_ones() {
    let generated = generate();
    let path = checked_in_path();
    if std::env::var_os("PARLOR_WRITE_TS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write ui/src/core/ipc-types.ts");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "ui/src/core/ipc-types.ts is not what the Rust types generate; run `npm run gen:types` \
         and commit the result. First differing line: {:?}",
        checked_in.lines().zip(generated.lines()).find(|(a, b)| a != b).map(|(_, b)| b)
    );
}

#[test]
fn every_type_an_event_refers_to_is_declared() {
    // ts-rs lists what each type refers to; all of it, transitively, must be in the file, or
    // the page's build fails on an unknown name.
    use ts_rs::TypeVisitor;
    let text = generate();
    struct Names {
        seen: std::collections::HashSet<std::any::TypeId>,
        names: Vec<String>,
    }
    impl ts_rs::TypeVisitor for Names {
        fn visit<T: TS + 'static + ?Sized>(&mut self) {
            if T::output_path().is_some() && self.seen.insert(std::any::TypeId::of::<T>()) {
                self.names.push(T::ident(&Config::new()));
                T::visit_dependencies(self);
            }
        }
    }
    let mut names = Names { seen: Default::default(), names: Vec::new() };
    names.visit::<UiEvent>();
    assert!(names.names.len() > 20, "the walk found the event payloads: {:?}", names.names);
    for name in names.names {
        assert!(text.contains(&format!("export type {name} ")), "{name} is not declared");
    }
}
