//! The fake server proven against the real grammers client (the one the Telegram adapter uses), over
//! TCP on 127.0.0.1 only. Every test is bounded by a timeout so a protocol bug fails instead of hanging.

use std::future::Future;
use std::net::SocketAddrV6;
use std::sync::Arc;
use std::time::Duration;

use grammers_mtproto::mtp;
use grammers_mtproto::transport::{self, Full};
use grammers_mtsender::{connect_with_auth, InvocationError, RpcError, Sender, SenderPool, ServerAddr};
use grammers_session::storages::MemorySession;
use grammers_session::types::DcOption;
use grammers_session::Session;
use grammers_tl_types::{self as tl, Identifiable, RemoteCall, Serializable};
use mtproto_fake::{FakeTelegram, Reply};

const TIMEOUT: Duration = Duration::from_secs(5);
const API_ID: i32 = 12345;

fn key(seed: u8) -> [u8; 256] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
}

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("timed out talking to the fake server")
}

async fn connect(server: &FakeTelegram, key: [u8; 256]) -> Sender<Full, mtp::Encrypted> {
    let addr = ServerAddr::Tcp {
        address: server.addr().into(),
    };
    bounded(connect_with_auth(Full::new(), addr, key))
        .await
        .expect("tcp connect")
}

/// The wrapping grammers' SenderPool (and so the adapter) puts around the first query of a connection.
fn init<Q: RemoteCall>(query: Q) -> tl::functions::InvokeWithLayer<tl::functions::InitConnection<Q>> {
    tl::functions::InvokeWithLayer {
        layer: tl::LAYER,
        query: tl::functions::InitConnection {
            api_id: API_ID,
            device_model: "test".into(),
            system_version: "test".into(),
            app_version: "0.0.0".into(),
            system_lang_code: "en".into(),
            lang_pack: String::new(),
            lang_code: "en".into(),
            proxy: None,
            params: None,
            query,
        },
    }
}

/// Connects and performs the init handshake, as every real connection starts.
async fn connect_and_init(server: &FakeTelegram, key: [u8; 256]) -> Sender<Full, mtp::Encrypted> {
    let mut sender = connect(server, key).await;
    bounded(sender.invoke(&init(tl::functions::help::GetConfig {})))
        .await
        .expect("getConfig");
    sender
}

fn resolve(username: &str) -> tl::functions::contacts::ResolveUsername {
    tl::functions::contacts::ResolveUsername {
        username: username.into(),
        referer: None,
    }
}

fn resolved_user(user_id: i64) -> tl::enums::contacts::ResolvedPeer {
    tl::enums::contacts::ResolvedPeer::Peer(tl::types::contacts::ResolvedPeer {
        peer: tl::enums::Peer::User(tl::types::PeerUser { user_id }),
        chats: Vec::new(),
        users: vec![tl::enums::User::Empty(tl::types::UserEmpty { id: user_id })],
    })
}

fn resolved_user_id(peer: tl::enums::contacts::ResolvedPeer) -> i64 {
    let tl::enums::contacts::ResolvedPeer::Peer(peer) = peer;
    match peer.peer {
        tl::enums::Peer::User(user) => user.user_id,
        other => panic!("expected a user peer, got {other:?}"),
    }
}

/// A SenderPool whose session sends DC 2 to the fake server with `key`, as the adapter would configure it.
async fn pool_for(server: &FakeTelegram, key: [u8; 256]) -> SenderPool {
    let session = MemorySession::default();
    let addr = server.addr();
    session
        .set_dc_option(&DcOption {
            id: 2,
            ipv4: addr,
            ipv6: SocketAddrV6::new(addr.ip().to_ipv6_mapped(), addr.port(), 0, 0),
            auth_key: Some(key),
        })
        .await
        .expect("memory session");
    SenderPool::new(Arc::new(session), API_ID)
}

#[tokio::test]
async fn mtproto_server_answers_get_config_with_no_dc_options() {
    let server = FakeTelegram::builder().accept_key(key(1)).this_dc(4).start().await;
    let mut sender = connect(&server, key(1)).await;

    let tl::enums::Config::Config(config) = bounded(sender.invoke(&init(tl::functions::help::GetConfig {})))
        .await
        .expect("getConfig");

    assert!(
        config.dc_options.is_empty(),
        "the client must not learn real DC addresses"
    );
    assert_eq!(config.this_dc, 4);
    let calls = server.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.name, "help.getConfig");
    assert!(call.is::<tl::functions::help::GetConfig>());
    assert_eq!(call.layer, Some(tl::LAYER));
    assert_eq!(call.api_id, Some(API_ID));
    assert_eq!(call.connection, 0);
    assert!(!call.gzipped && !call.in_container);
    assert_eq!(call.body, tl::functions::help::GetConfig {}.to_bytes());
    assert_eq!((server.connections(), server.rejected_keys()), (1, 0));
}

#[tokio::test]
async fn mtproto_server_scripted_reply_round_trips() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| match call.decode::<tl::functions::contacts::ResolveUsername>() {
            Some(request) if request.username == "alice" => Reply::ok(&resolved_user(42)),
            Some(_) => Reply::error(400, "USERNAME_NOT_OCCUPIED"),
            None => Reply::Default,
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let peer = bounded(sender.invoke(&resolve("alice")))
        .await
        .expect("resolveUsername");

    assert_eq!(resolved_user_id(peer), 42);
    let calls = server.calls_named("contacts.resolveUsername");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        call.decode::<tl::functions::contacts::ResolveUsername>()
            .unwrap()
            .username,
        "alice"
    );
    // Only the first query of a connection is wrapped in invokeWithLayer/initConnection.
    assert_eq!((call.layer, call.api_id), (None, None));
    // grammers sends the ack for the previous answer in a container with the next query.
    assert!(call.in_container);
    assert_eq!(
        server.calls().iter().map(|c| c.name).collect::<Vec<_>>(),
        ["help.getConfig", "contacts.resolveUsername"]
    );
}

#[tokio::test]
async fn mtproto_server_rpc_errors_reach_the_client_parsed() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| {
            if call.is::<tl::functions::channels::InviteToChannel>() {
                Reply::error(420, "FLOOD_WAIT_30")
            } else if call.is::<tl::functions::contacts::ResolveUsername>() {
                Reply::error(400, "USER_PRIVACY_RESTRICTED")
            } else {
                Reply::Default
            }
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let invite = tl::functions::channels::InviteToChannel {
        channel: tl::enums::InputChannel::Channel(tl::types::InputChannel {
            channel_id: 1,
            access_hash: 2,
        }),
        users: vec![tl::enums::InputUser::User(tl::types::InputUser {
            user_id: 3,
            access_hash: 4,
        })],
    };
    let flood = bounded(sender.invoke(&invite)).await.expect_err("flood wait");
    let privacy = bounded(sender.invoke(&resolve("bob"))).await.expect_err("privacy");

    match flood {
        InvocationError::Rpc(RpcError {
            code,
            name,
            value,
            caused_by,
        }) => {
            assert_eq!((code, name.as_str(), value), (420, "FLOOD_WAIT", Some(30)));
            assert_eq!(
                caused_by,
                Some(tl::functions::channels::InviteToChannel::CONSTRUCTOR_ID)
            );
        }
        other => panic!("expected an rpc error, got {other:?}"),
    }
    assert!(privacy.is("USER_PRIVACY_RESTRICTED"), "{privacy:?}");
    let recorded = server.calls_named("channels.inviteToChannel");
    assert_eq!(
        recorded[0].decode::<tl::functions::channels::InviteToChannel>(),
        Some(invite)
    );
}

#[tokio::test]
async fn mtproto_server_unscripted_call_fails_loudly() {
    let server = FakeTelegram::builder().accept_key(key(1)).start().await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let error = bounded(sender.invoke(&resolve("carol")))
        .await
        .expect_err("not scripted");

    match error {
        InvocationError::Rpc(rpc) => {
            assert_eq!(
                (rpc.code, rpc.name.as_str()),
                (500, "FAKE_NOT_SCRIPTED_contacts.resolveUsername")
            );
        }
        other => panic!("expected an rpc error, got {other:?}"),
    }
}

#[tokio::test]
async fn mtproto_server_large_request_arrives_gzipped() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| {
            if call.is::<tl::functions::messages::SendMessage>() {
                Reply::ok(&tl::enums::Updates::UpdateShortSentMessage(
                    tl::types::UpdateShortSentMessage {
                        out: true,
                        id: 100,
                        pts: 1,
                        pts_count: 1,
                        date: 1_700_000_000,
                        media: None,
                        entities: None,
                        ttl_period: None,
                    },
                ))
            } else {
                Reply::Default
            }
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;
    let text = "Join our group! ".repeat(160); // 2560 bytes, over grammers' 512-byte compression threshold
    let request = tl::functions::messages::SendMessage {
        no_webpage: true,
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: 5,
            access_hash: 6,
        }),
        reply_to: None,
        message: text.clone(),
        random_id: 77,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
    };

    let updates = bounded(sender.invoke(&request)).await.expect("sendMessage");

    assert!(matches!(updates, tl::enums::Updates::UpdateShortSentMessage(ref u) if u.id == 100));
    let call = &server.calls_named("messages.sendMessage")[0];
    assert!(call.gzipped);
    let decoded = call.decode::<tl::functions::messages::SendMessage>().expect("decodes");
    assert_eq!((decoded.message, decoded.random_id), (text, 77));
    assert!(
        !server.calls_named("help.getConfig")[0].gzipped,
        "small requests are sent plain"
    );
}

#[tokio::test]
async fn mtproto_server_large_reply_round_trips() {
    // Big results go back gzip-packed, like Telegram's; grammers must unpack them transparently.
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| {
            if call.is::<tl::functions::users::GetUsers>() {
                let users: Vec<tl::enums::User> = (1..=300)
                    .map(|id| tl::enums::User::Empty(tl::types::UserEmpty { id }))
                    .collect();
                Reply::ok(&users)
            } else {
                Reply::Default
            }
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let users = bounded(sender.invoke(&tl::functions::users::GetUsers {
        id: vec![tl::enums::InputUser::UserSelf],
    }))
    .await
    .expect("getUsers");

    assert_eq!(users.len(), 300);
    assert_eq!(users[299].id(), 300);
}

#[tokio::test]
async fn mtproto_server_concurrent_requests_arrive_batched_and_get_their_own_answers() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| match call.decode::<tl::functions::contacts::ResolveUsername>() {
            Some(request) => {
                let id = request.username.trim_start_matches("user").parse().expect("userN");
                Reply::ok(&resolved_user(id))
            }
            None => Reply::Default,
        })
        .start()
        .await;
    let pool = pool_for(&server, key(1)).await;
    let handle = pool.handle.clone();
    let _updates = pool.updates;
    let runner = tokio::spawn(pool.runner.run());

    // All requests are queued before the pool's runner gets to run, so its sender batches them. How many
    // share a container depends on tokio::select! ordering inside grammers; with 20 requests the chance
    // that none are batched is about 2^-19.
    let mut requests = tokio::task::JoinSet::new();
    for id in 1..=20i64 {
        let handle = handle.thin.clone();
        requests.spawn(async move { (id, handle.invoke_in_dc(2, &resolve(&format!("user{id}"))).await) });
    }
    let results = bounded(requests.join_all()).await;

    for (id, result) in results {
        assert_eq!(resolved_user_id(result.expect("resolveUsername")), id);
    }
    let queries = server.calls_named("contacts.resolveUsername");
    assert_eq!(queries.len(), 20);
    let largest_batch = queries
        .iter()
        .filter_map(|c| c.container_msg_id)
        .map(|container| queries.iter().filter(|c| c.container_msg_id == Some(container)).count())
        .max()
        .unwrap_or(0);
    assert!(largest_batch >= 2, "no two queries shared a container: {queries:?}");
    let init = server.calls_named("help.getConfig");
    assert_eq!(init.len(), 1);
    assert_eq!((init[0].layer, init[0].api_id), (Some(tl::LAYER), Some(API_ID)));
    assert_eq!(server.connections(), 1);

    handle.quit();
    bounded(runner).await.expect("runner stops");
}

#[tokio::test]
async fn mtproto_server_rejects_unknown_key_with_404() {
    let server = FakeTelegram::builder().accept_key(key(1)).start().await;
    let mut sender = connect(&server, key(2)).await;

    let error = bounded(sender.invoke(&init(tl::functions::help::GetConfig {})))
        .await
        .expect_err("unknown key");

    assert!(
        matches!(
            error,
            InvocationError::Transport(transport::Error::BadStatus { status: 404 })
        ),
        "{error:?}"
    );
    assert_eq!(server.rejected_keys(), 1);
    assert!(server.calls().is_empty());
}

#[tokio::test]
async fn mtproto_server_pool_with_unknown_key_falls_back_to_key_exchange_which_is_rejected() {
    // On -404 grammers' SenderPool reconnects and starts a DH key exchange (plaintext, auth_key_id 0).
    // The fake server does not do DH, so that is rejected too: the adapter sees the 404, not a hang.
    let server = FakeTelegram::builder().accept_key(key(1)).start().await;
    let pool = pool_for(&server, key(9)).await;
    let handle = pool.handle.clone();
    let runner = tokio::spawn(pool.runner.run());

    let error = bounded(handle.invoke_in_dc(2, &resolve("dave")))
        .await
        .expect_err("rejected");

    assert!(
        matches!(
            error,
            InvocationError::Transport(transport::Error::BadStatus { status: 404 })
        ),
        "{error:?}"
    );
    assert_eq!((server.connections(), server.rejected_keys()), (2, 2));
    handle.quit();
    bounded(runner).await.expect("runner stops");
}

#[tokio::test]
async fn mtproto_server_close_reply_is_an_io_error_for_the_client() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| {
            if call.is::<tl::functions::contacts::ResolveUsername>() {
                Reply::Close
            } else {
                Reply::Default
            }
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let error = bounded(sender.invoke(&resolve("erin"))).await.expect_err("closed");

    assert!(matches!(error, InvocationError::Io(_)), "{error:?}");
    // The server keeps accepting new connections afterwards.
    connect_and_init(&server, key(1)).await;
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn mtproto_server_scripted_transport_error_reaches_the_client() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| {
            if call.is::<tl::functions::contacts::ResolveUsername>() {
                Reply::TransportError(-429)
            } else {
                Reply::Default
            }
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let error = bounded(sender.invoke(&resolve("frank"))).await.expect_err("429");

    assert!(
        matches!(
            error,
            InvocationError::Transport(transport::Error::BadStatus { status: 429 })
        ),
        "{error:?}"
    );
    assert_eq!(
        server.rejected_keys(),
        0,
        "a scripted transport error is not a key rejection"
    );
}

#[tokio::test]
async fn mtproto_server_silence_leaves_the_call_unanswered() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| {
            if call.is::<tl::functions::contacts::ResolveUsername>() {
                Reply::Silence
            } else {
                Reply::Default
            }
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let outcome = tokio::time::timeout(Duration::from_millis(300), sender.invoke(&resolve("gina"))).await;

    assert!(outcome.is_err(), "a silenced call must not be answered");
    assert!(server.wait_for_calls(2, TIMEOUT).await);
    assert_eq!(server.calls()[1].name, "contacts.resolveUsername");
}

#[tokio::test]
#[should_panic(expected = "the fake Telegram script panicked: contacts.resolveUsername: boom")]
async fn mtproto_server_script_panic_fails_the_test_on_drop() {
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .script(|call| {
            assert!(!call.is::<tl::functions::contacts::ResolveUsername>(), "boom");
            Reply::Default
        })
        .start()
        .await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let error = bounded(sender.invoke(&resolve("hank")))
        .await
        .expect_err("connection closed");

    assert!(matches!(error, InvocationError::Io(_)), "{error:?}");
    // `server` is dropped here and re-raises the script's panic.
}

#[tokio::test]
async fn mtproto_server_answers_pings() {
    let server = FakeTelegram::builder().accept_key(key(1)).start().await;
    let mut sender = connect_and_init(&server, key(1)).await;

    let tl::enums::Pong::Pong(pong) = bounded(sender.invoke(&tl::functions::Ping { ping_id: 77 }))
        .await
        .expect("pong");
    let tl::enums::Pong::Pong(delayed) = bounded(sender.invoke(&tl::functions::PingDelayDisconnect {
        ping_id: 78,
        disconnect_delay: 75,
    }))
    .await
    .expect("pong");

    assert_eq!((pong.ping_id, delayed.ping_id), (77, 78));
    assert_eq!(pong.msg_id, server.calls_named("ping")[0].msg_id);
    assert_eq!(server.calls_named("ping_delay_disconnect").len(), 1);
}

#[tokio::test]
async fn mtproto_server_salt_dance_like_telegram() {
    // grammers starts every connection with salt 0. Real Telegram bounces that with bad_server_salt,
    // announces the session, and grammers then fetches future salts before re-sending its request.
    let server = FakeTelegram::builder()
        .accept_key(key(1))
        .server_salt(0x5EED)
        .start()
        .await;
    let mut sender = connect(&server, key(1)).await;

    let tl::enums::Config::Config(config) = bounded(sender.invoke(&init(tl::functions::help::GetConfig {})))
        .await
        .expect("getConfig after bad_server_salt");
    let tl::enums::NearestDc::Dc(nearest) = bounded(sender.invoke(&tl::functions::help::GetNearestDc {}))
        .await
        .expect("getNearestDc");

    assert!(config.dc_options.is_empty());
    assert_eq!(nearest.this_dc, 2);
    let names: Vec<_> = server.calls().iter().map(|c| c.name).collect();
    assert_eq!(names, ["get_future_salts", "help.getConfig", "help.getNearestDc"]);
}

#[tokio::test]
async fn mtproto_server_stops_on_drop() {
    let server = FakeTelegram::builder().accept_key(key(1)).start().await;
    let addr = server.addr();
    let mut sender = connect_and_init(&server, key(1)).await;

    drop(server);

    let error = bounded(sender.invoke(&tl::functions::help::GetNearestDc {}))
        .await
        .expect_err("server is gone");
    assert!(matches!(error, InvocationError::Io(_)), "{error:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener must be closed"
    );
}
