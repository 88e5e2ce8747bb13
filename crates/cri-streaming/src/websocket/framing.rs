//! The channel framing of apimachinery's wsstream: each WebSocket message starts with the
//! number of the channel it belongs to (a byte, or in the `base64.` protocols an ASCII digit
//! followed by the data in standard base64). In v5.channel.k8s.io a message on channel 255
//! whose payload is one channel number closes that channel (the client's way to end stdin,
//! since a WebSocket cannot be half-closed).

use base64::Engine;
use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

/// The channel reserved for v5's close signal.
pub const CLOSE_CHANNEL: u8 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Binary,
    Base64,
}

/// How one negotiated subprotocol frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub codec: Codec,
    /// Channel 255 carries close signals (v5.channel.k8s.io).
    pub close_signal: bool,
}

/// A message from the client, decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Data {
        channel: u8,
        data: Bytes,
    },
    /// v5: the client will send nothing more on this channel.
    Close {
        channel: u8,
    },
    /// Empty messages, pings and pongs: nothing for a channel.
    Nothing,
    /// The client closed the connection.
    End,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("channel {0:?} is not a base64 channel digit")]
    BadChannelDigit(u8),
    #[error("invalid base64 data on channel {channel}: {message}")]
    BadBase64 { channel: u8, message: String },
    #[error("a close signal names one channel, got {0} bytes")]
    BadCloseSignal(usize),
}

impl Framing {
    /// The message that carries `data` on `channel`.
    pub fn encode(&self, channel: u8, data: &[u8]) -> Message {
        match self.codec {
            Codec::Binary => {
                let mut frame = Vec::with_capacity(data.len() + 1);
                frame.push(channel);
                frame.extend_from_slice(data);
                Message::binary(frame)
            }
            Codec::Base64 => {
                // wsstream writes '0' + channel, then the data in base64.
                let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
                text.push(char::from(b'0'.wrapping_add(channel)));
                base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
                Message::text(text)
            }
        }
    }

    /// What a message from the client means. Text and binary messages are read alike, as
    /// wsstream reads both.
    pub fn decode(&self, message: Message) -> Result<Incoming, FrameError> {
        let payload: Bytes = match message {
            Message::Binary(b) => b,
            Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
            Message::Close(_) => return Ok(Incoming::End),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                return Ok(Incoming::Nothing)
            }
        };
        let Some(&first) = payload.first() else {
            return Ok(Incoming::Nothing);
        };
        let data = payload.slice(1..);
        let channel = match self.codec {
            Codec::Binary => first,
            Codec::Base64 => first
                .checked_sub(b'0')
                .ok_or(FrameError::BadChannelDigit(first))?,
        };
        if self.close_signal && channel == CLOSE_CHANNEL {
            return match data.as_ref() {
                [closed] => Ok(Incoming::Close { channel: *closed }),
                other => Err(FrameError::BadCloseSignal(other.len())),
            };
        }
        let data = match self.codec {
            Codec::Binary => data,
            Codec::Base64 => base64::engine::general_purpose::STANDARD
                .decode(&data)
                .map(Bytes::from)
                .map_err(|e| FrameError::BadBase64 {
                    channel,
                    message: e.to_string(),
                })?,
        };
        Ok(Incoming::Data { channel, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINARY: Framing = Framing {
        codec: Codec::Binary,
        close_signal: false,
    };
    const BASE64: Framing = Framing {
        codec: Codec::Base64,
        close_signal: false,
    };
    const V5: Framing = Framing {
        codec: Codec::Binary,
        close_signal: true,
    };

    #[test]
    fn binary_messages_carry_the_channel_as_their_first_byte() {
        // wsstream's own example: "\n" on stdout is {1, 10}.
        assert_eq!(BINARY.encode(1, b"\n"), Message::binary(vec![1u8, 10]));
        assert_eq!(BINARY.encode(3, b""), Message::binary(vec![3u8]));
        assert_eq!(
            BINARY.decode(Message::binary(vec![0u8, 102, 111, 111, 10])),
            Ok(Incoming::Data {
                channel: 0,
                data: Bytes::from_static(b"foo\n")
            })
        );
        assert_eq!(
            BINARY.decode(Message::binary(Vec::new())),
            Ok(Incoming::Nothing)
        );
    }

    #[test]
    fn base64_messages_carry_a_channel_digit_and_base64_data() {
        // wsstream's example: "\n" on stdout is "1Cg==".
        assert_eq!(BASE64.encode(1, b"\n"), Message::text("1Cg=="));
        assert_eq!(BASE64.encode(2, b"foo"), Message::text("2Zm9v"));
        assert_eq!(
            BASE64.decode(Message::text("0Zm9vCg==")),
            Ok(Incoming::Data {
                channel: 0,
                data: Bytes::from_static(b"foo\n")
            })
        );
        // Clients may send base64 frames as binary messages too.
        assert_eq!(
            BASE64.decode(Message::binary(b"4eyJXaWR0aCI6MX0=".to_vec())),
            Ok(Incoming::Data {
                channel: 4,
                data: Bytes::from_static(br#"{"Width":1}"#)
            })
        );
        assert!(matches!(
            BASE64.decode(Message::text("0not base64!")),
            Err(FrameError::BadBase64 { channel: 0, .. })
        ));
        assert_eq!(
            BASE64.decode(Message::text("\u{1}x")),
            Err(FrameError::BadChannelDigit(1))
        );
    }

    #[test]
    fn v5_closes_a_channel_with_a_message_on_channel_255() {
        assert_eq!(
            V5.decode(Message::binary(vec![255u8, 0])),
            Ok(Incoming::Close { channel: 0 })
        );
        assert_eq!(
            V5.decode(Message::binary(vec![255u8, 0, 1])),
            Err(FrameError::BadCloseSignal(2))
        );
        // Before v5, 255 is an ordinary (unknown) channel.
        assert_eq!(
            BINARY.decode(Message::binary(vec![255u8, 0])),
            Ok(Incoming::Data {
                channel: 255,
                data: Bytes::from_static(&[0])
            })
        );
        assert_eq!(V5.decode(Message::Close(None)), Ok(Incoming::End));
    }
}
