"""A second, independent MTProto client (Telethon) against the fake server.

grammers and the fake server could share a misreading of the protocol and still agree with each
other; Telethon is a separate implementation, so if it can talk to the fake server too, the server
speaks MTProto rather than "grammers' dialect". Driven by tests/telethon_client.rs.

Usage: client.py <port> <auth_key_hex> <api_id>
Prints key=value lines on success; exits 3 when Telethon is missing or not the pinned version.
"""

import asyncio
import base64
import ipaddress
import logging
import struct
import sys

TELETHON_VERSION = "1.45.0"

try:
    import telethon
    from telethon import TelegramClient, functions
    from telethon.sessions import StringSession
    from telethon.tl.alltlobjects import LAYER
except ImportError:
    print(f"telethon is not importable: pip install telethon=={TELETHON_VERSION}", file=sys.stderr)
    sys.exit(3)

if telethon.__version__ != TELETHON_VERSION:
    print(
        f"telethon {telethon.__version__} is installed, the test is pinned to it: "
        f"pip install telethon=={TELETHON_VERSION}",
        file=sys.stderr,
    )
    sys.exit(3)


def string_session(dc_id: int, port: int, auth_key: bytes) -> StringSession:
    """Telethon's StringSession v1: '1' + base64(dc_id, packed ip, port, key), built by hand so the
    pre-shared key is used and no DH exchange is attempted."""
    ip = ipaddress.ip_address("127.0.0.1").packed
    packed = struct.pack(">B{}sH256s".format(len(ip)), dc_id, ip, port, auth_key)
    return StringSession("1" + base64.urlsafe_b64encode(packed).decode("ascii"))


async def main(port: int, auth_key: bytes, api_id: int) -> None:
    client = TelegramClient(
        string_session(2, port, auth_key),
        api_id,
        "0123456789abcdef0123456789abcdef",
        connection_retries=0,
        request_retries=1,
        auto_reconnect=False,
        timeout=5,
        receive_updates=False,  # exercises the server's invokeWithoutUpdates unwrapping
    )
    await client.connect()
    try:
        nearest = await client(functions.help.GetNearestDcRequest())
        pong = await client(functions.PingRequest(ping_id=4242))
    finally:
        await client.disconnect()
    print(f"layer={LAYER}")
    print(f"this_dc={nearest.this_dc}")
    print(f"nearest_dc={nearest.nearest_dc}")
    print(f"ping_id={pong.ping_id}")


if __name__ == "__main__":
    # Telethon logs protocol complaints (ignored messages, bad msg_ids) as warnings: show them on failure.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    port, key_hex, api_id = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    asyncio.run(asyncio.wait_for(main(port, bytes.fromhex(key_hex), api_id), timeout=20))
