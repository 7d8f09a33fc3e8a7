//! One client connection: the MTProto message layer on top of the full transport.
//!
//! Each transport packet is handled to completion before the next is read, and everything it
//! produces goes back in one packet (a `msg_container` when there is more than one message), which
//! mirrors how Telegram answers a container and exercises the client's container parsing.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use tokio::net::TcpStream;

use crate::crypto::{self, AuthKey, PLAINTEXT_HEADER_LEN};
use crate::transport::Full;
use crate::{Call, Reply, Shared};

const MSG_CONTAINER: u32 = 0x73f1_f8dc;
const GZIP_PACKED: u32 = 0x3072_cfa1;
const RPC_RESULT: u32 = 0xf35c_6d01;
const MSGS_ACK: u32 = <tl::types::MsgsAck as Identifiable>::CONSTRUCTOR_ID;

const INVOKE_WITH_LAYER: u32 = <tl::functions::InvokeWithLayer<Rest> as Identifiable>::CONSTRUCTOR_ID;
const INIT_CONNECTION: u32 = <tl::functions::InitConnection<Rest> as Identifiable>::CONSTRUCTOR_ID;
const INVOKE_WITHOUT_UPDATES: u32 = <tl::functions::InvokeWithoutUpdates<Rest> as Identifiable>::CONSTRUCTOR_ID;
const INVOKE_AFTER_MSG: u32 = <tl::functions::InvokeAfterMsg<Rest> as Identifiable>::CONSTRUCTOR_ID;
const INVOKE_AFTER_MSGS: u32 = <tl::functions::InvokeAfterMsgs<Rest> as Identifiable>::CONSTRUCTOR_ID;
const INVOKE_WITH_TAKEOUT: u32 = <tl::functions::InvokeWithTakeout<Rest> as Identifiable>::CONSTRUCTOR_ID;

/// Results at least this large are sent gzip-packed (when that makes them smaller), as Telegram does,
/// so clients prove they can unpack them.
const GZIP_RESULT_THRESHOLD: usize = 512;

/// The error Telegram gives for a query it cannot parse.
const MALFORMED_QUERY: &str = "INPUT_FETCH_ERROR";

/// "Whatever follows" in a wrapper such as `invokeWithLayer`, kept as raw bytes so wrappers can be peeled
/// without knowing the inner query's type.
struct Rest(Vec<u8>);

impl Deserializable for Rest {
    fn deserialize(buf: &mut Cursor) -> tl::deserialize::Result<Self> {
        let mut rest = Vec::new();
        buf.read_to_end(&mut rest)?;
        Ok(Rest(rest))
    }
}

/// What happens to the connection after a packet has been answered.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Continue,
    Close,
    TransportError(i32),
}

struct Outgoing {
    body: Vec<u8>,
    /// Content-related messages get odd seq_nos and must be acknowledged by the client.
    content_related: bool,
}

/// How a query reached us, recorded on the [`Call`].
#[derive(Clone, Copy, Default)]
struct Wrapping {
    layer: Option<i32>,
    api_id: Option<i32>,
    gzipped: bool,
    /// The msg_id of the enclosing `msg_container`, if any.
    container: Option<i64>,
}

/// The packet being handled: its key and the salt replies will carry.
struct Packet {
    key: AuthKey,
    salt: i64,
}

pub(crate) async fn serve(index: usize, mut stream: TcpStream, shared: Arc<Shared>) {
    let mut connection = Connection {
        index,
        shared,
        transport: Full::default(),
        session_id: None,
        content_messages: 0,
        session_announced: false,
        msg_ids: MsgIds::default(),
    };
    let (mut reader, mut writer) = stream.split();
    loop {
        let payload = match connection.transport.read(&mut reader).await {
            Ok(Some(payload)) => payload,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(index, %error, "fake telegram: dropping connection");
                return;
            }
        };
        let (reply, end) = connection.on_packet(&payload);
        if let Some(reply) = reply {
            if let Err(error) = connection.transport.write(&mut writer, &reply).await {
                tracing::debug!(index, %error, "fake telegram: write failed");
                return;
            }
        }
        match end {
            End::Continue => {}
            End::Close => return,
            End::TransportError(code) => {
                let _ = Full::write_error(&mut writer, code).await;
                return;
            }
        }
    }
}

struct Connection {
    index: usize,
    shared: Arc<Shared>,
    transport: Full,
    /// The client's session; grammers panics if a reply carries any other.
    session_id: Option<i64>,
    /// Content-related messages sent in this session, which drives our seq_no.
    content_messages: i32,
    session_announced: bool,
    msg_ids: MsgIds,
}

/// Server msg_ids: unixtime in the high 32 bits, strictly increasing, and ≡ 1 (mod 4) because every
/// message we send answers a client message. Telethon rejects even ids and ids far from its clock.
#[derive(Default)]
struct MsgIds {
    last: i64,
}

impl MsgIds {
    fn next(&mut self) -> i64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
        let candidate = ((now.as_secs() << 32) | (u64::from(now.subsec_nanos()) << 2)) as i64;
        let candidate = (candidate & !3) | 1;
        self.last = if candidate > self.last {
            candidate
        } else {
            (self.last & !3) + 4 + 1
        };
        self.last
    }
}

impl Connection {
    /// Handles one transport payload; returns the encrypted reply to send (if any) and what to do next.
    fn on_packet(&mut self, payload: &[u8]) -> (Option<Vec<u8>>, End) {
        let Some(key_id) = payload
            .get(..8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        else {
            return (None, End::Close);
        };
        let Some(key) = self.shared.keys.get(&key_id).cloned() else {
            self.shared
                .rejected_keys
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tracing::debug!(
                index = self.index,
                key_id,
                "fake telegram: unknown auth key, answering -404"
            );
            return (None, End::TransportError(-404));
        };
        let plaintext = match crypto::decrypt_from_client(&key, payload) {
            Ok(plaintext) => plaintext,
            Err(error) => {
                tracing::warn!(index = self.index, %error, "fake telegram: undecryptable message, closing");
                return (None, End::Close);
            }
        };
        let word = |at: usize| i64::from_le_bytes(plaintext[at..at + 8].try_into().expect("8 bytes"));
        let (salt, session_id, msg_id) = (word(0), word(8), word(16));
        let seq_no = i32::from_le_bytes(plaintext[24..28].try_into().expect("4 bytes"));
        let body = &plaintext[PLAINTEXT_HEADER_LEN..];

        if self.session_id != Some(session_id) {
            self.session_id = Some(session_id);
            self.content_messages = 0;
            self.session_announced = false;
        }

        let mut out = Vec::new();
        if let Some(server_salt) = self.shared.server_salt {
            if salt != server_salt {
                // Not content-related; the client re-sends the message (or container) with the new salt.
                out.push(Outgoing {
                    body: tl::enums::BadMsgNotification::BadServerSalt(tl::types::BadServerSalt {
                        bad_msg_id: msg_id,
                        bad_msg_seqno: seq_no,
                        error_code: 48,
                        new_server_salt: server_salt,
                    })
                    .to_bytes(),
                    content_related: false,
                });
                let packet = Packet { key, salt: server_salt };
                return (Some(self.seal(&packet, out)), End::Continue);
            }
            if !self.session_announced {
                self.session_announced = true;
                out.push(Outgoing {
                    body: tl::enums::NewSession::Created(tl::types::NewSessionCreated {
                        first_msg_id: msg_id,
                        unique_id: random_i64(),
                        server_salt,
                    })
                    .to_bytes(),
                    content_related: true,
                });
            }
        }

        let packet = Packet { key, salt };
        let end = self.on_message(&packet, msg_id, body, Wrapping::default(), &mut out);
        let reply = (!out.is_empty()).then(|| self.seal(&packet, out));
        (reply, end)
    }

    fn on_message(
        &mut self,
        packet: &Packet,
        msg_id: i64,
        body: &[u8],
        wrapping: Wrapping,
        out: &mut Vec<Outgoing>,
    ) -> End {
        let Some(constructor_id) = constructor_of(body) else {
            return End::Close;
        };
        match constructor_id {
            MSG_CONTAINER => {
                if wrapping.container.is_some() {
                    tracing::warn!(index = self.index, "fake telegram: nested container, closing");
                    return End::Close;
                }
                let Some(messages) = parse_container(&body[4..]) else {
                    tracing::warn!(index = self.index, "fake telegram: malformed container, closing");
                    return End::Close;
                };
                let inner = Wrapping {
                    container: Some(msg_id),
                    ..wrapping
                };
                for (inner_msg_id, inner_body) in messages {
                    let end = self.on_message(packet, inner_msg_id, &inner_body, inner, out);
                    if end != End::Continue {
                        return end;
                    }
                }
                End::Continue
            }
            GZIP_PACKED => match gunzip(&body[4..]) {
                Some(unpacked) => {
                    let inner = Wrapping {
                        gzipped: true,
                        ..wrapping
                    };
                    self.on_message(packet, msg_id, &unpacked, inner, out)
                }
                None => {
                    out.push(rpc_error(msg_id, 400, MALFORMED_QUERY));
                    End::Continue
                }
            },
            MSGS_ACK => End::Continue,
            _ => self.on_query(packet, msg_id, body, wrapping, out),
        }
    }

    fn on_query(
        &mut self,
        packet: &Packet,
        msg_id: i64,
        body: &[u8],
        mut wrapping: Wrapping,
        out: &mut Vec<Outgoing>,
    ) -> End {
        let Some(query) = unwrap_query(body, &mut wrapping) else {
            out.push(rpc_error(msg_id, 400, MALFORMED_QUERY));
            return End::Continue;
        };
        let constructor_id = constructor_of(&query).unwrap_or_default();
        let call = Call {
            connection: self.index,
            auth_key_id: packet.key.id(),
            msg_id,
            constructor_id,
            name: tl::name_for_id(constructor_id),
            body: query,
            layer: wrapping.layer,
            api_id: wrapping.api_id,
            gzipped: wrapping.gzipped,
            in_container: wrapping.container.is_some(),
            container_msg_id: wrapping.container,
        };
        tracing::debug!(index = self.index, name = call.name, msg_id, "fake telegram: call");
        match self.shared.record_and_script(&call) {
            Reply::Default => {
                out.push(self.default_reply(packet, &call));
                End::Continue
            }
            Reply::Ok(result) => {
                if constructor_of(&result).is_none_or(|id| tl::name_for_id(id) == "(unknown)") {
                    tracing::warn!(
                        name = call.name,
                        "fake telegram: scripted result does not start with a known constructor; \
                         pass a tl::enums value, tl::types serialize without their constructor id"
                    );
                }
                out.push(rpc_result(msg_id, result));
                End::Continue
            }
            Reply::Error { code, message } => {
                out.push(rpc_error(msg_id, code, &message));
                End::Continue
            }
            Reply::Silence => End::Continue,
            Reply::Close => End::Close,
            Reply::TransportError(code) => End::TransportError(code),
        }
    }

    fn default_reply(&self, packet: &Packet, call: &Call) -> Outgoing {
        // Service answers (pong, future_salts, destroy_session_*) travel as top-level messages, not inside
        // rpc_result: grammers only matches an internal get_future_salts when it arrives that way, and
        // would otherwise stall waiting for salts forever.
        let service = |body: Vec<u8>| Outgoing {
            body,
            content_related: false,
        };
        if let Some(ping) = call.decode::<tl::functions::Ping>() {
            return service(pong(call.msg_id, ping.ping_id));
        }
        if let Some(ping) = call.decode::<tl::functions::PingDelayDisconnect>() {
            return service(pong(call.msg_id, ping.ping_id));
        }
        if let Some(request) = call.decode::<tl::functions::GetFutureSalts>() {
            let salt = self.shared.server_salt.unwrap_or(packet.salt);
            return service(future_salts(call.msg_id, request.num, salt));
        }
        if let Some(request) = call.decode::<tl::functions::DestroySession>() {
            let body = tl::enums::DestroySessionRes::DestroySessionNone(tl::types::DestroySessionNone {
                session_id: request.session_id,
            });
            return service(body.to_bytes());
        }
        if call.is::<tl::functions::RpcDropAnswer>() {
            return rpc_result(call.msg_id, tl::enums::RpcDropAnswer::RpcAnswerUnknown.to_bytes());
        }
        if call.is::<tl::functions::help::GetConfig>() {
            return rpc_result(call.msg_id, config(self.shared.this_dc).to_bytes());
        }
        if call.is::<tl::functions::help::GetNearestDc>() {
            let this_dc = self.shared.this_dc;
            let nearest = tl::enums::NearestDc::Dc(tl::types::NearestDc {
                country: "ZZ".into(),
                this_dc,
                nearest_dc: this_dc,
            });
            return rpc_result(call.msg_id, nearest.to_bytes());
        }
        rpc_error(call.msg_id, 500, &format!("FAKE_NOT_SCRIPTED_{}", call.name))
    }

    /// Frames, salts, numbers and encrypts what a packet produced.
    fn seal(&mut self, packet: &Packet, mut out: Vec<Outgoing>) -> Vec<u8> {
        let (msg_id, seq_no, body) = if out.len() == 1 {
            let message = out.pop().expect("one message");
            (
                self.msg_ids.next(),
                self.next_seq_no(message.content_related),
                message.body,
            )
        } else {
            let mut body = Vec::new();
            MSG_CONTAINER.serialize(&mut body);
            (out.len() as i32).serialize(&mut body);
            for message in out {
                self.msg_ids.next().serialize(&mut body);
                self.next_seq_no(message.content_related).serialize(&mut body);
                (message.body.len() as i32).serialize(&mut body);
                body.extend_from_slice(&message.body);
            }
            (self.msg_ids.next(), self.next_seq_no(false), body)
        };
        let mut plaintext = Vec::with_capacity(PLAINTEXT_HEADER_LEN + body.len());
        packet.salt.serialize(&mut plaintext);
        self.session_id
            .expect("a packet sets the session")
            .serialize(&mut plaintext);
        msg_id.serialize(&mut plaintext);
        seq_no.serialize(&mut plaintext);
        (body.len() as i32).serialize(&mut plaintext);
        plaintext.extend_from_slice(&body);
        crypto::encrypt_for_client(&packet.key, plaintext)
    }

    fn next_seq_no(&mut self, content_related: bool) -> i32 {
        if content_related {
            self.content_messages += 1;
            self.content_messages * 2 - 1
        } else {
            self.content_messages * 2
        }
    }
}

/// Peels the `invoke*`/`initConnection` wrappers (and a gzip inside them), recording layer and api_id.
fn unwrap_query(body: &[u8], wrapping: &mut Wrapping) -> Option<Vec<u8>> {
    let mut query = body.to_vec();
    loop {
        let constructor_id = constructor_of(&query)?;
        let mut cursor = Cursor::from_slice(&query[4..]);
        let inner = match constructor_id {
            INVOKE_WITH_LAYER => {
                let wrapper = tl::functions::InvokeWithLayer::<Rest>::deserialize(&mut cursor).ok()?;
                wrapping.layer = Some(wrapper.layer);
                wrapper.query
            }
            INIT_CONNECTION => {
                let wrapper = tl::functions::InitConnection::<Rest>::deserialize(&mut cursor).ok()?;
                wrapping.api_id = Some(wrapper.api_id);
                wrapper.query
            }
            INVOKE_WITHOUT_UPDATES => {
                tl::functions::InvokeWithoutUpdates::<Rest>::deserialize(&mut cursor)
                    .ok()?
                    .query
            }
            INVOKE_AFTER_MSG => {
                tl::functions::InvokeAfterMsg::<Rest>::deserialize(&mut cursor)
                    .ok()?
                    .query
            }
            INVOKE_AFTER_MSGS => {
                tl::functions::InvokeAfterMsgs::<Rest>::deserialize(&mut cursor)
                    .ok()?
                    .query
            }
            INVOKE_WITH_TAKEOUT => {
                tl::functions::InvokeWithTakeout::<Rest>::deserialize(&mut cursor)
                    .ok()?
                    .query
            }
            GZIP_PACKED => {
                wrapping.gzipped = true;
                Rest(gunzip(&query[4..])?)
            }
            _ => return Some(query),
        };
        query = inner.0;
    }
}

fn constructor_of(body: &[u8]) -> Option<u32> {
    body.get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// `msg_container`'s body (after the constructor id): a count, then msg_id, seqno, length, body each.
fn parse_container(data: &[u8]) -> Option<Vec<(i64, Vec<u8>)>> {
    let mut cursor = Cursor::from_slice(data);
    let count = i32::deserialize(&mut cursor).ok()?;
    let mut messages = Vec::new();
    for _ in 0..count {
        let msg_id = i64::deserialize(&mut cursor).ok()?;
        let _seq_no = i32::deserialize(&mut cursor).ok()?;
        let len = usize::try_from(i32::deserialize(&mut cursor).ok()?).ok()?;
        if len > data.len() {
            return None;
        }
        let mut body = vec![0u8; len];
        cursor.read_exact(&mut body).ok()?;
        messages.push((msg_id, body));
    }
    Some(messages)
}

/// `gzip_packed`'s body (after the constructor id): the gzip stream as TL `bytes`.
fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let packed = Vec::<u8>::from_bytes(data).ok()?;
    let mut unpacked = Vec::new();
    GzDecoder::new(&packed[..]).read_to_end(&mut unpacked).ok()?;
    Some(unpacked)
}

fn rpc_result(req_msg_id: i64, result: Vec<u8>) -> Outgoing {
    let result = if result.len() >= GZIP_RESULT_THRESHOLD {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&result).expect("writing to memory");
        let packed = encoder.finish().expect("writing to memory");
        let mut boxed = Vec::new();
        GZIP_PACKED.serialize(&mut boxed);
        packed.serialize(&mut boxed);
        if boxed.len() < result.len() {
            boxed
        } else {
            result
        }
    } else {
        result
    };
    let mut body = Vec::with_capacity(12 + result.len());
    RPC_RESULT.serialize(&mut body);
    req_msg_id.serialize(&mut body);
    body.extend_from_slice(&result);
    Outgoing {
        body,
        content_related: true,
    }
}

fn rpc_error(req_msg_id: i64, code: i32, message: &str) -> Outgoing {
    let error = tl::enums::RpcError::Error(tl::types::RpcError {
        error_code: code,
        error_message: message.to_owned(),
    });
    rpc_result(req_msg_id, error.to_bytes())
}

fn pong(msg_id: i64, ping_id: i64) -> Vec<u8> {
    tl::enums::Pong::Pong(tl::types::Pong { msg_id, ping_id }).to_bytes()
}

/// The same salt in every slot, each valid for an hour, the first one already valid. Handing out a
/// single salt would make grammers ask again before every request, since it refills at one left.
fn future_salts(req_msg_id: i64, num: i32, salt: i64) -> Vec<u8> {
    let now = unix_now();
    let salts = (0..num.clamp(2, 64))
        .map(|i| tl::types::FutureSalt {
            valid_since: now - 1800 + i * 3600,
            valid_until: now + 1800 + i * 3600,
            salt,
        })
        .collect();
    tl::enums::FutureSalts::Salts(tl::types::FutureSalts {
        req_msg_id,
        now,
        salts: tl::RawVec(salts),
    })
    .to_bytes()
}

/// A `config` that keeps the client where it is: no dc_options, so grammers' SenderPool does not learn
/// any real Telegram address and every connection stays on 127.0.0.1.
fn config(this_dc: i32) -> tl::enums::Config {
    let now = unix_now();
    tl::enums::Config::Config(tl::types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: true,
        blocked_mode: false,
        force_try_ipv6: false,
        date: now,
        expires: now + 3600,
        test_mode: false,
        this_dc,
        dc_options: Vec::new(),
        dc_txt_domain_name: "fake.invalid".into(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        tmp_sessions: None,
        call_receive_timeout_ms: 20_000,
        call_ring_timeout_ms: 90_000,
        call_connect_timeout_ms: 30_000,
        call_packet_timeout_ms: 10_000,
        me_url_prefix: "https://t.me/".into(),
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: 4,
        suggested_lang_code: None,
        lang_pack_version: None,
        base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    })
}

fn unix_now() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i32::try_from(secs).expect("unixtime fits i32 until 2038")
}

fn random_i64() -> i64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("OS random source is available");
    i64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtproto_server_msg_ids_increase_and_are_1_mod_4() {
        let mut ids = MsgIds::default();
        let generated: Vec<i64> = (0..1000).map(|_| ids.next()).collect();
        assert!(generated.windows(2).all(|w| w[0] < w[1]));
        assert!(generated.iter().all(|id| id % 4 == 1));
        let drift = i64::from(unix_now()) - (generated[0] >> 32);
        assert!((0..=1).contains(&drift), "high bits are the unixtime");
    }

    #[test]
    fn mtproto_unwraps_every_invoke_wrapper() {
        let nested = tl::functions::InvokeWithLayer {
            layer: 229,
            query: tl::functions::InvokeWithoutUpdates {
                query: tl::functions::InitConnection {
                    api_id: 7,
                    device_model: "d".into(),
                    system_version: "s".into(),
                    app_version: "a".into(),
                    system_lang_code: "en".into(),
                    lang_pack: String::new(),
                    lang_code: "en".into(),
                    proxy: Some(tl::enums::InputClientProxy::Proxy(tl::types::InputClientProxy {
                        address: "p".into(),
                        port: 1,
                    })),
                    params: None,
                    query: tl::functions::InvokeAfterMsgs {
                        msg_ids: vec![1, 2],
                        query: tl::functions::InvokeWithTakeout {
                            takeout_id: 3,
                            query: tl::functions::InvokeAfterMsg {
                                msg_id: 4,
                                query: tl::functions::help::GetNearestDc {},
                            },
                        },
                    },
                },
            },
        };
        let mut wrapping = Wrapping::default();
        let inner = unwrap_query(&nested.to_bytes(), &mut wrapping).expect("well-formed");
        assert_eq!(inner, tl::functions::help::GetNearestDc {}.to_bytes());
        assert_eq!((wrapping.layer, wrapping.api_id), (Some(229), Some(7)));
    }

    #[test]
    fn mtproto_large_results_are_gzip_packed_and_small_ones_are_not() {
        let small = rpc_result(5, vec![0; 16]);
        let large = rpc_result(5, vec![0; 4096]);
        assert_eq!(constructor_of(&small.body[12..]), Some(0));
        assert_eq!(constructor_of(&large.body[12..]), Some(GZIP_PACKED));
        assert_eq!(gunzip(&large.body[16..]), Some(vec![0; 4096]));
    }
}
