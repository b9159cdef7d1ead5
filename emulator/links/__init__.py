"""How the host reaches a board: PTY, RFC 2217, replay, in-memory, and the control channel."""
