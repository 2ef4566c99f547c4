//! What the user types for a dashboard run's stdin: the app sends lines as
//! messages, the worker hands the run a reader over them.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// A run's stdin fed from messages: each message's bytes are read in
/// order; when every sender is dropped, the reader reads end of file.
#[derive(Debug)]
pub struct ChannelReader {
    received: mpsc::UnboundedReceiver<Vec<u8>>,
    /// The unread rest of the last message.
    pending: Vec<u8>,
    offset: usize,
}

impl ChannelReader {
    /// A reader and the sender that feeds it; dropping the sender ends the
    /// input.
    pub fn new() -> (mpsc::UnboundedSender<Vec<u8>>, Self) {
        let (send, received) = mpsc::unbounded_channel();
        (
            send,
            Self {
                received,
                pending: Vec::new(),
                offset: 0,
            },
        )
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.offset == self.pending.len() {
            match self.received.poll_recv(cx) {
                Poll::Ready(Some(message)) => {
                    self.pending = message;
                    self.offset = 0;
                }
                // Every sender gone: end of input (a read of nothing).
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let this = &mut *self;
        let rest = &this.pending[this.offset..];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.offset += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn messages_read_in_order_then_end_of_file() {
        let (send, mut reader) = ChannelReader::new();
        assert!(send.send(b"first line\n".to_vec()).is_ok());
        assert!(send.send(Vec::new()).is_ok());
        assert!(send.send("日本\n".as_bytes().to_vec()).is_ok());
        drop(send);
        let mut small = [0; 4];
        let n = reader.read(&mut small).await.unwrap();
        assert_eq!(&small[..n], b"firs");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, "t line\n日本\n".as_bytes());
    }

    #[tokio::test]
    async fn a_read_waits_for_the_next_message() {
        let (send, mut reader) = ChannelReader::new();
        let read = tokio::spawn(async move {
            let mut line = [0; 16];
            let n = reader.read(&mut line).await.unwrap();
            line[..n].to_vec()
        });
        tokio::task::yield_now().await;
        assert!(!read.is_finished());
        assert!(send.send(b"ok\n".to_vec()).is_ok());
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("the read did not finish within 10 s of the message")
            .unwrap();
        assert_eq!(got, b"ok\n");
    }
}
