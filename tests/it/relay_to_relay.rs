//! Two clients on one server talking relay to relay (the usual shape of a
//! call where both sides need TURN).
