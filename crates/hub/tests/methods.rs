//! The hub method table (issue 19): every method the widget invokes, and every method
//! docs/hub-contract.md lists, is in the one table the hub dispatches through; an unknown
//! target gets the documented error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::json;
use switchboard_core::call::machine::Command;
use switchboard_core::call::wire::invocation;
use switchboard_hub::hub::ConnectionInfo;
use switchboard_hub::{Hub, HubConfig, hub_methods};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hub() -> std::sync::Arc<Hub> {
    Hub::new(HubConfig::new("methods-test-key"), hub_methods())
}

fn alice() -> ConnectionInfo {
    ConnectionInfo {
        connection_id: "c1".into(),
        hub: "switchboard".into(),
        user: Some("alice".into()),
        stateful: false,
        roles: Vec::new(),
    }
}

/// The methods of the widget's call commands (`switchboard_core::call::wire::invocation`).
fn command_methods() -> BTreeSet<&'static str> {
    let commands = [
        Command::Answer,
        Command::Reject,
        Command::HangUp,
        Command::Hold,
        Command::Resume,
        Command::SendDtmf("1".into()),
        Command::BlindTransfer("bob".into()),
        Command::StartConsult("bob".into()),
        Command::CompleteConsult,
        Command::CancelConsult,
        Command::Conference,
        Command::Mute(true),
    ];
    // Exhaustive on purpose: a new command must be listed above (and so be checked).
    for c in &commands {
        match c {
            Command::Answer
            | Command::Reject
            | Command::HangUp
            | Command::Hold
            | Command::Resume
            | Command::SendDtmf(_)
            | Command::BlindTransfer(_)
            | Command::StartConsult(_)
            | Command::CompleteConsult
            | Command::CancelConsult
            | Command::Conference
            | Command::Mute(_) => {}
        }
    }
    commands.iter().map(|c| invocation("c1", c).0).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names the widget's sources invoke literally: `client.invoke("name", …)` and the
/// `("name", vec![…])` invocations it queues (built in `switchboard_core::invocation`).
fn widget_literal_methods() -> BTreeSet<String> {
    let mut files = vec![repo().join("crates/core/src/invocation.rs")];
    rust_files(&repo().join("crates/widget/src"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for marker in ["client.invoke(\"", "push((\""] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let Some(end) = rest.find('"') else { continue };
                let name = &rest[..end];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

/// The methods of the `| method | ...` tables of docs/hub-contract.md.
fn documented_methods() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/hub-contract.md")).expect("contract");
    let mut names = BTreeSet::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| method |") {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table && let Some(rest) = line.strip_prefix("| `") {
            names.insert(rest[..rest.find('`').expect("closing backtick")].to_owned());
        }
    }
    names
}

#[test]
fn every_method_the_widget_invokes_is_in_the_table() {
    let hub = hub();
    let commands = command_methods();
    assert!(commands.contains("muteCall"), "{commands:?}");
    let literal = widget_literal_methods();
    for name in ["getCalls", "makeCall", "subscribePresence", "sendMessage"] {
        assert!(
            literal.contains(name),
            "the widget scan missed {name}: {literal:?}"
        );
    }
    for name in commands
        .iter()
        .copied()
        .chain(literal.iter().map(String::as_str))
    {
        assert!(
            hub.is_hub_method(name),
            "{name} is not in the hub's method table"
        );
    }
}

#[test]
fn the_table_is_the_documented_method_list() {
    let documented = documented_methods();
    assert!(documented.contains("muteCall"), "{documented:?}");
    assert!(documented.contains("unsubscribePresence"), "{documented:?}");
    let table: BTreeSet<String> = hub().hub_methods().map(str::to_owned).collect();
    assert_eq!(table, documented);
}

#[test]
fn names_match_case_insensitively() {
    let hub = hub();
    assert!(hub.is_hub_method("MUTECALL"));
    assert!(hub.is_hub_method("getcalls"));
    // Dispatched, not unknown: the method's own argument check answers.
    assert_eq!(
        hub.invoke(&alice(), "ACCEPTCALL", &[]),
        Err("ACCEPTCALL expects (callId: string) but the invocation provides 0 argument(s)".into())
    );
    assert_eq!(
        hub.invoke(&alice(), "muteCall", &[json!("c9"), json!("yes")]),
        Err("muteCall: muted must be a boolean".into())
    );
}

#[test]
fn an_unknown_target_gets_the_documented_error() {
    let hub = hub();
    assert!(!hub.is_hub_method("dial"));
    assert_eq!(
        hub.invoke(&alice(), "dial", &[json!("+15550100")]),
        Err("Unknown hub method 'dial'".into())
    );
    assert_eq!(
        hub.invoke(&alice(), "counter", &[json!(1)]),
        Err("Unknown hub method 'counter'".into())
    );
}
