"""Remote inference: the wire protocol, robot sessions, the websocket server (kairos-serve) and its
client (docs/remote-protocol.md). protocol.py and session.py do not depend on the transport."""
