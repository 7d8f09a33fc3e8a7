//! The fake server against a second, independent MTProto implementation: Telethon (Python). If only
//! grammers could talk to the fake server, a misreading of the protocol shared by the two would go
//! unnoticed. Requires `python3` with `pip install telethon==1.45.0` (the script checks the version).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use grammers_tl_types as tl;
use mtproto_fake::{FakeTelegram, Reply};

const API_ID: i32 = 12345;
const PINNED: &str = "pip install telethon==1.45.0";

/// Exit code the script uses when Telethon is missing or not the pinned version.
const TELETHON_MISSING: i32 = 3;

fn key() -> [u8; 256] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(17).wrapping_add(5))
}

#[tokio::test]
async fn mtproto_telethon_client_connects_and_calls() {
    let server = FakeTelegram::builder()
        .accept_key(key())
        // Telethon also starts with salt 0, so this makes it go through bad_server_salt and
        // new_session_created: the salt handling is checked by a second implementation too.
        .server_salt(0x1234_5678)
        .script(|call| {
            // Telethon's connect() asks who it is logged in as; a fresh key is not logged in. Answering
            // with an error keeps the reply independent of Telethon's layer (229 vs grammers' 230).
            if call.is::<tl::functions::users::GetUsers>() || call.is::<tl::functions::updates::GetState>() {
                Reply::error(401, "AUTH_KEY_UNREGISTERED")
            } else {
                Reply::Default
            }
        })
        .start()
        .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/telethon/client.py");
    let key_hex: String = key().iter().map(|b| format!("{b:02x}")).collect();

    let child = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(server.addr().port().to_string())
        .arg(key_hex)
        .arg(API_ID.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); it is needed with: {PINNED}"));
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("telethon script timed out")
        .expect("telethon script ran");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(TELETHON_MISSING),
        "Telethon unavailable: {PINNED}\n{stderr}"
    );
    assert!(
        output.status.success(),
        "telethon script failed: {}\n{stderr}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed: HashMap<&str, &str> = stdout.lines().filter_map(|line| line.split_once('=')).collect();
    assert_eq!(printed.get("this_dc"), Some(&"2"), "{stdout}");
    assert_eq!(printed.get("nearest_dc"), Some(&"2"), "{stdout}");
    assert_eq!(printed.get("ping_id"), Some(&"4242"), "{stdout}");
    let telethon_layer: i32 = printed["layer"].parse().expect("layer is a number");

    let calls = server.calls();
    let init = calls
        .iter()
        .find(|c| c.layer.is_some())
        .expect("an invokeWithLayer call");
    assert_eq!(init.name, "help.getConfig");
    assert_eq!((init.layer, init.api_id), (Some(telethon_layer), Some(API_ID)));
    assert_eq!(server.calls_named("help.getNearestDc").len(), 1);
    assert_eq!(server.calls_named("ping").len(), 1);
    assert_eq!((server.connections(), server.rejected_keys()), (1, 0));
}
