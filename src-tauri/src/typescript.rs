//! The page's TypeScript types, generated from the shell's payload types with `ts-rs`.
//!
//! `ui/src/core/ipc-types.ts` is what [`generate`] prints, checked in so the page builds (and
//! CI's `npm run build` type-checks it) without running Rust first. The test below regenerates
//! it and fails when the checked-in file differs: a payload changed in Rust and the page has not
//! seen it. `PARLOR_WRITE_TS=1 cargo test -p parlor-app --lib typescript` (or `npm run gen:types`)
//! rewrites the file. `ui/src/core/types.ts` re-exports these and adds what only the page needs.

use std::path::PathBuf;

use ts_rs::{Config, TS};

use crate::payloads::{
    ChatSent, DeviceChoice, DeviceList, FileOpened, InvitationFields, MeetingCreated, Role, ScreenChoice, ScreenSource,
    Settings, TransferStarted, UiEvent, UpdateInfo,
};

/// Collects the declarations of a type and of everything it refers to, each once, keyed by
/// name; each as ts-rs's own file export writes it (doc comment, then `export type`). The file
/// lists them by name: the order in which ts-rs's derive visits a type's dependencies can change
/// from one compilation to the next, and the checked-in file must not.
struct Declarations {
    cfg: Config,
    seen: std::collections::HashSet<std::any::TypeId>,
    by_name: std::collections::BTreeMap<String, String>,
}

impl ts_rs::TypeVisitor for Declarations {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if !self.seen.insert(std::any::TypeId::of::<T>()) {
            return;
        }
        // Primitives and containers (`Option`, `Vec`) are written inline; what they hold may
        // still need a declaration.
        if T::output_path().is_none() {
            return T::visit_dependencies(self);
        }
        let mut declaration = T::docs().unwrap_or_default();
        declaration.push_str("export ");
        declaration.push_str(&T::decl(&self.cfg));
        declaration.push_str("\n\n");
        self.by_name.insert(T::ident(&self.cfg), declaration);
        T::visit_dependencies(self);
    }
}

/// The whole generated file: the command results and arguments and the events, with every
/// type they refer to.
pub fn generate() -> String {
    use ts_rs::TypeVisitor;
    // The u64s the page gets are counters and byte counts far below 2^53 (request, file and
    // chat ids, sizes, timestamps in ms), so a JS number holds them exactly; JSON carries them
    // as plain numbers, never as bigint.
    let mut d = Declarations {
        cfg: Config::new().with_large_int("number"),
        seen: Default::default(),
        by_name: Default::default(),
    };
    d.visit::<MeetingCreated>();
    d.visit::<DeviceList>();
    d.visit::<DeviceChoice>();
    d.visit::<Settings>();
    d.visit::<ChatSent>();
    d.visit::<TransferStarted>();
    d.visit::<FileOpened>();
    d.visit::<InvitationFields>();
    d.visit::<UpdateInfo>();
    d.visit::<Role>();
    d.visit::<ScreenSource>();
    d.visit::<ScreenChoice>();
    d.visit::<UiEvent>();
    let mut out = String::from(
        "// Generated from src-tauri/src/payloads.rs and error.rs by src-tauri/src/typescript.rs.\n\
         // Do not edit: change the Rust types and run `npm run gen:types`.\n\n\
         /** A participant's id inside one meeting; also its UDP sender id. Never 0 (0 is the relay). */\n\
         export type ParticipantId = number;\n\n",
    );
    out.extend(d.by_name.into_values());
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
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
