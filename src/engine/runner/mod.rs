//! The in-sandbox runner, host side: the volume that carries its binary into
//! every sandbox, and the transport that speaks its protocol.

pub mod background;
pub mod binary;
pub mod files;
pub mod transport;
pub mod volume;
