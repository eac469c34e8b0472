//! TURN server state machine.
