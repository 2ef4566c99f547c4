//! The in-sandbox runner of sandpit. The library part is the wire protocol
//! ([`proto`]), shared with the host side; the binary (`sandpit-runner`)
//! speaks it inside a sandbox.

pub mod proto;
